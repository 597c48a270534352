"""Bad command lines fail at start-up, before any data: one line naming key and value, exit status 2.

Most cases run the real entry point (`adv_smooth.__main__.main`, Hydra included) in this process,
which costs a fraction of a second each instead of a Python + torch start-up; a few run as real
subprocesses to prove what a shell sees.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import typing
from pathlib import Path
from unittest import mock

import pytest
from hydra.core.global_hydra import GlobalHydra

from adv_smooth.config_checks import PRECISIONS, check_config
from adv_smooth.errors import UserError
from tests.conftest import CONF, REPO, compose_config

# Hydra's own logging setup is skipped in-process: it would re-point the root logger at this test's streams.
QUIET = ["hydra/job_logging=none", "hydra/hydra_logging=none"]


def run_main(*args: str) -> tuple[int, str]:
    """Run `python -m adv_smooth *args` in this process; return (exit status, stderr)."""
    from adv_smooth.__main__ import main

    err = io.StringIO()
    code: int | str | None = 0
    with mock.patch.object(sys, "argv", ["adv_smooth", *args, *QUIET]), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as e:
            code = e.code
        finally:
            GlobalHydra.instance().clear()
    return (code if isinstance(code, int) else 1), err.getvalue()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


MISSING = "/nonexistent/adv_smooth_data"
# (overrides, text the one error line must contain: the key and the value as the user wrote it)
CASES: list[tuple[list[str], str]] = [
    (["optim.lrr=1"], "optim.lrr=1"),
    (["dataset=foo"], "dataset='foo'"),
    (["seed=0,1"], "seed=0,1"),
    (["seed=-1"], "seed=-1"),
    (["seed=abc"], "seed='abc'"),
    (["dataset.batch_size=0"], "dataset.batch_size=0"),
    (["dataset.batch_size=1.5"], "dataset.batch_size=1.5"),
    (["dataset.eval_batch_size=0"], "dataset.eval_batch_size=0"),
    (["dataset.val_fraction=1.0"], "dataset.val_fraction=1.0"),
    (["dataset.split_seed=-3"], "dataset.split_seed=-3"),
    (["dataset.augment=maybe"], "dataset.augment='maybe'"),
    (["dataset.normalize=1"], "dataset.normalize=1"),
    (["dataset=cifar10", "dataset.download=false", f"dataset.root={MISSING}"], f"dataset.root='{MISSING}'"),
    (["model.width=0"], "model.width=0"),
    (["model.blocks=[1,0]"], "model.blocks=[1, 0]"),
    (["model.blocks=[]"], "model.blocks=[]"),
    (["model.block=wide"], "model.block='wide'"),
    (["model.residual=avg"], "model.residual='avg'"),
    (["optim.lr=0"], "optim.lr=0"),
    (["optim.lr=-1"], "optim.lr=-1"),
    (["optim.lr=abc"], "optim.lr='abc'"),
    (["optim.momentum=1.0"], "optim.momentum=1.0"),
    (["optim.weight_decay=-0.1"], "optim.weight_decay=-0.1"),
    (["optim.milestones=[5,3]"], "optim.milestones=[5, 3]"),
    (["optim.milestones=[-1]"], "optim.milestones=[-1]"),
    (["optim.gamma=0"], "optim.gamma=0"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
    (["trainer.min_epochs=5", "trainer.max_epochs=2"], "trainer.min_epochs=5"),
    (["trainer.precision=8"], "trainer.precision=8"),
    (["trainer.devices=0"], "trainer.devices=0"),
    (["trainer.accelerator=quantum"], "trainer.accelerator='quantum'"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0"),
    (["callbacks.model_checkpoint.every_n_train_steps=5"], "callbacks.model_checkpoint.every_n_train_steps=5"),
    (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path='/nonexistent/last.ckpt'"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_line_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    code, stderr = run_main(*args, f"hydra.run.dir={tmp_path}")
    lines = error_lines(stderr)
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "checkpoints").exists()  # failed before training started


@pytest.mark.parametrize(
    ("args", "message"),
    [(["optim.lrr=1"], "Could not override 'optim.lrr'"), (["model.block=wide"], "model.block='wide'")],
    ids=["unknown key", "bad enum"],
)
def test_real_process_exit_status(args: list[str], message: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "adv_smooth", *args, f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


def test_full_error_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(UserError, match="optim.lr=-1"):
        run_main("optim.lr=-1", f"hydra.run.dir={tmp_path}")


GROUPS = sorted(p.name for p in Path(CONF).iterdir() if p.is_dir() and p.name not in ("hydra", "row", "hparams_search"))
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((Path(CONF) / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_shipped_option_passes_the_checks(
    group: str, option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The validator must accept everything the project ships (folder needs its root, by design)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # GPU presets are checked as on a GPU machine
    extra = ["dataset.root=" + str(tmp_path)] if (group, option) == ("dataset", "folder") else []
    check_config(compose_config(f"{group}={option}", *extra, output_dir=tmp_path))


def test_folder_dataset_without_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"dataset.root=None is invalid"):
        check_config(compose_config("dataset=folder", output_dir=tmp_path))


def test_precision_list_matches_lightning() -> None:
    from lightning_fabric.connector import _PRECISION_INPUT

    accepted = {value for literal in typing.get_args(_PRECISION_INPUT) for value in typing.get_args(literal)}
    assert accepted == set(PRECISIONS)
