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
from pathlib import Path
from unittest import mock

import pytest
import pytorch_lightning as pl
from hydra.core.global_hydra import GlobalHydra

from adv_smooth.app.preflight.checks import check_config
from adv_smooth.utils.errors import UserError
from tests.conftest import CONF, REPO, compose_config, option_override

# Hydra's own logging setup is skipped in-process: it would re-point the root logger at this test's streams.
QUIET = ["hydra/job_logging=none", "hydra/hydra_logging=none"]


def run_main(*args: str, module: str = "adv_smooth.__main__") -> tuple[int, str]:
    """Run `python -m adv_smooth *args` (or another entry point's `module`) in this process; (exit status, stderr)."""
    import importlib

    main = importlib.import_module(module).main
    err = io.StringIO()
    code: int | str | None = 0
    with mock.patch.object(sys, "argv", [module, *args, *QUIET]), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as e:
            code = e.code
        finally:
            GlobalHydra.instance().clear()
    return (code if isinstance(code, int) else 1), err.getvalue()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def completed_results(run_dir: Path) -> bool:
    """Whether `run_dir` holds a results.json that claims a completed run."""
    import json

    path = run_dir / "results.json"
    return path.is_file() and json.loads(path.read_text()).get("status") == "completed"


def run_process(module: str, *args: str) -> tuple[int, str]:
    """`python -m <module> *args` in a real interpreter from the repository root: (exit status, stderr)."""
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300, cwd=REPO)
    return proc.returncode, proc.stderr


def assert_one_line_exit_2(code: int, stderr: str, message: str, run_dir: Path | None = None) -> None:
    """The contract for every bad input: status 2, one `error:` line naming it, no completed results.json."""
    lines = error_lines(stderr)
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr
    assert run_dir is None or not completed_results(run_dir)


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
    (["optim.milestones=[0.5,3]"], "optim.milestones=[0.5, 3]"),  # fractions and epochs mixed
    (["optim.milestones=[1.5]"], "optim.milestones=[1.5]"),  # a fraction is < 1
    (["optim.gamma=0"], "optim.gamma=0"),
    (["optim.schedule=linear"], "optim.schedule='linear'"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
    (["trainer.min_epochs=5", "trainer.max_epochs=2"], "trainer.min_epochs=5"),
    (["trainer.precision=8"], "trainer.precision=8"),
    (["trainer.devices=0"], "trainer.devices=0"),
    (["trainer.accelerator=quantum"], "trainer.accelerator='quantum'"),
    (
        ["trainer.strategy=ddpx"],
        "trainer.strategy='ddpx' is invalid: You selected an invalid strategy name",
    ),  # Lightning's list
    (["trainer.num_nodes=0"], "trainer.num_nodes=0"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0"),
    (["callbacks.model_checkpoint.every_n_train_steps=5"], "callbacks.model_checkpoint.every_n_train_steps=5"),
    (["resume=/nonexistent/last.ckpt"], "resume='/nonexistent/last.ckpt'"),
    (["overwrite=maybe"], "overwrite='maybe'"),
    # Raised inside objects Hydra builds (InstantiationException chains, unwrapped to their cause):
    (["defense=smooth", "defense.gamma=-1"], "defense.gamma=-1"),
    (["defense=adv", "defense.labels=false"], "defense.labels=False is invalid"),  # set through an interpolation
    (["defense=trades", "defense.trades_beta=-1"], "defense.trades_beta=-1 is invalid"),  # Trades' own `beta`
    (["defense=trades", "defense.steps=-1"], "defense.steps=-1 is invalid"),  # the crafting attack's `steps`
    (["eval.snr_levels=[0]"], "eval.snr_levels=[0]"),
    (["eval.snr_levels=abc"], "eval.snr_levels="),
    (["eval.attacks.pgd.steps=-1"], "eval.attacks.pgd.steps=-1"),
    (["+eval.attacks.pgd.foo=1"], "eval.attacks.pgd.foo"),
    (
        ["defense=smooth", "+defense.components.smoothness.foo=1"],
        "+defense.components.smoothness.foo=1: adv_smooth.defenses.smoothness.LaplacianSmoothness does not read 'foo'",
    ),
    (["+trainer.foo=1"], "+trainer.foo=1: pytorch_lightning.Trainer does not read 'foo' (it reads accelerator, "),
    (["+callbacks.lr_monitor.foo=1"], "LearningRateMonitor does not read 'foo' (it reads logging_interval"),
    (["callbacks.lr_monitor.logging_interval=abc"], "callbacks.lr_monitor: logging_interval should be"),
    (
        ["defense=smooth", "defense.components.smoothness._target_=adv_smooth.nope.X"],
        "defense.components.smoothness._target_='adv_smooth.nope.X' cannot be imported",
    ),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_line_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    code, stderr = run_main(*args, f"hydra.run.dir={tmp_path}")
    assert_one_line_exit_2(code, stderr, message, tmp_path)
    assert not (tmp_path / "checkpoints").exists()  # failed before training started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["optim.lrr=1"], "optim has no key 'lrr'; did you mean optim.lr=1?"),
        (["model.block=wide"], "model.block='wide'"),
    ],
    ids=["unknown key", "bad enum"],
)
def test_real_process_exit_status(args: list[str], message: str, tmp_path: Path) -> None:
    assert_one_line_exit_2(*run_process("adv_smooth", *args, f"hydra.run.dir={tmp_path}"), message)


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
    check_config(compose_config(option_override(group, option), *extra, output_dir=tmp_path))


def test_folder_dataset_without_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"dataset.root=None is invalid"):
        check_config(compose_config("dataset=folder", output_dir=tmp_path))


# -- bad inputs that are not a single override: run dirs, files, the disk ----------------------------------------
TINY_RUN = [
    "trainer=cpu",
    "model.width=4",
    "model.blocks=[1,1]",
    "~callbacks.robustness",
    "logger=csv",
    "trainer.enable_model_summary=false",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
]


def _completed_run(run: Path) -> dict[str, bytes]:
    """A finished run's dir as train() leaves it (without training): results.json, .hydra/, a checkpoint."""
    import json

    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run / "results.json").write_text(json.dumps({"status": "completed", "metrics": {"test/acc": 0.9}}))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    return _snapshot(run)


def _snapshot(run: Path) -> dict[str, bytes]:
    files = sorted(p for p in run.rglob("*") if p.is_file() and p.name != ".lock")
    return {str(p.relative_to(run)): p.read_bytes() for p in files}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "holds a completed run"),  # a valid command: still refused
        (["seed=-1"], "holds a completed run"),  # a rejected one: the completed results must survive
        (["resume=/nonexistent/x.ckpt"], "resume='/nonexistent/x.ckpt'"),  # resuming: fails later, keeps them
        (["ckpt_path=/nonexistent/x.ckpt"], "resume='/nonexistent/x.ckpt'"),  # the old spelling: the same, noted
    ],
)
def test_a_completed_run_is_never_replaced(args: list[str], message: str, tmp_path: Path) -> None:
    before = _completed_run(tmp_path)
    code, stderr = run_main(*TINY_RUN, *args, f"hydra.run.dir={tmp_path}")
    old_spelling = any(a.startswith("ckpt_path=") for a in args)  # accepted for one release, with a one-line notice
    assert code == 2 and message in stderr and len(error_lines(stderr)) == 1 + old_spelling, stderr
    if old_spelling:
        assert (
            error_lines(stderr)[0] == "note: ckpt_path= is now resume= (ckpt_path= is still accepted in this release)"
        )
    after = _snapshot(tmp_path)
    if any(
        a.startswith(("resume=", "ckpt_path=")) for a in args
    ):  # a resume may start, so Hydra records its command in .hydra/
        before = {k: v for k, v in before.items() if not k.startswith(".hydra")}
        after = {k: v for k, v in after.items() if not k.startswith(".hydra")}
    assert after == before  # results.json, checkpoints (and unless resuming, .hydra/config.yaml) untouched


def test_evaluation_into_a_completed_run_dir_is_refused(tmp_path: Path) -> None:
    before = _completed_run(tmp_path)
    code, stderr = run_main("ckpt=/nonexistent/x.ckpt", f"hydra.run.dir={tmp_path}", module="adv_smooth.evaluate")
    assert_one_line_exit_2(code, stderr, "holds a completed run")
    assert _snapshot(tmp_path) == before


def test_train_refuses_a_completed_dir_unless_resuming_or_overwrite(tmp_path: Path) -> None:
    from adv_smooth.app.run_dir import refuse_completed

    _completed_run(tmp_path)
    with pytest.raises(UserError, match="overwrite=true"):
        refuse_completed(tmp_path, resuming=False, overwrite=False)
    refuse_completed(tmp_path, resuming=True, overwrite=False)
    refuse_completed(tmp_path, resuming=False, overwrite=True)


def test_a_run_dir_in_use_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """Another process holds the run dir's lock: one line with its PID, and nothing written into the dir."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(tmp_path / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode()); print('held', flush=True)\n"
            "time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, stderr = run_main(*TINY_RUN, f"hydra.run.dir={tmp_path}")
        assert_one_line_exit_2(code, stderr, f"PID {holder.pid} holds {tmp_path / '.lock'}", tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]  # no .hydra/, no failure record
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.usefixtures("one_thread")
def test_a_run_holds_its_dir_lock_while_training(tmp_path: Path) -> None:
    import fcntl
    import json
    import os

    held = tmp_path / "lock_was_held"
    probe = [f"+callbacks.probe._target_={__name__}.LockProbe", f"+callbacks.probe.out={held}"]
    code, stderr = run_main(*TINY_RUN, *probe, "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, stderr
    assert held.read_text() == "held"
    fd = os.open(tmp_path / "run" / ".lock", os.O_RDWR)  # and released at the end
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "completed"


class LockProbe(pl.Callback):
    """Records (in `out`) whether the run dir's lock is held while training: another flock must fail."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)

    def on_train_start(self, trainer, pl_module) -> None:
        import fcntl
        import os

        fd = os.open(Path(trainer.default_root_dir) / ".lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.out.write_text("free")
        except BlockingIOError:
            self.out.write_text("held")
        finally:
            os.close(fd)


@pytest.mark.usefixtures("one_thread")
def test_disabled_progress_bar_drops_the_progress_bar_callback(tmp_path: Path) -> None:
    """Lightning refuses a TQDMProgressBar callback with enable_progress_bar=false; the run now just runs."""
    code, stderr = run_main(*TINY_RUN, "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path}")
    assert code == 0, stderr
    assert completed_results(tmp_path)


def test_unreadable_image_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root, chmod cannot deny a read: the listing itself is made to fail as it would for another user."""
    import os

    from PIL import Image

    root = tmp_path / "images"
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(root / split / cls / f"{i}.png")
    walk = os.walk

    def denied(top, onerror=None, **kwargs):
        if Path(top).name == "dog":
            error = PermissionError(13, "Permission denied", str(top))
            if onerror is None:
                return iter(())  # what os.walk does by default: the folder silently vanishes
            onerror(error)
        return walk(top, onerror=onerror, **kwargs)

    monkeypatch.setattr(os, "walk", denied)
    run = tmp_path / "run"
    code, stderr = run_main(
        *TINY_RUN, "dataset=folder", f"dataset.root={root}", "dataset.size=8", f"hydra.run.dir={run}"
    )
    assert_one_line_exit_2(code, stderr, f"cannot read {root / 'train' / 'dog'}: Permission denied", run)


@pytest.mark.parametrize(
    ("text", "message"), [("model: [unclosed\n", "is not a readable config"), ("- a list\n", "is not a config mapping")]
)
def test_corrupt_saved_config_in_evaluate(text: str, message: str, tmp_path: Path) -> None:
    import torch

    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(text)
    (run / "checkpoints").mkdir()
    torch.save({"state_dict": {}, "epoch": 0}, run / "checkpoints" / "last.ckpt")
    out = tmp_path / "eval"
    code, stderr = run_main(
        f"ckpt={run / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={out}", module="adv_smooth.evaluate"
    )
    assert_one_line_exit_2(code, stderr, f"{run / '.hydra' / 'config.yaml'} {message}", out)


def test_report_out_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from adv_smooth.app.report_run import main

    job = tmp_path / "sweep" / "0"
    job.mkdir(parents=True)
    (job / "results.json").write_text(json.dumps({"status": "completed", "metrics": {"test/acc": 0.5}}))
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path / "sweep"), "--out", str(tmp_path / "taken"), "--no-plots"])
    assert_one_line_exit_2(int(info.value.code), capsys.readouterr().err, f"--out {tmp_path / 'taken'} is a file")


@pytest.mark.usefixtures("one_thread")
def test_full_disk_is_one_line_even_when_the_failure_record_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No space for checkpoints, nor for the failure record: one line, exit 2, no file under a finished name."""
    import errno

    import torch

    from adv_smooth import run_record

    real_save = torch.save

    def full(obj, f, *args, **kwargs):
        if hasattr(f, "write"):
            f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    def no_record(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "results.json"))

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(run_record, "write_json_atomic", no_record)  # what RunRecord.write writes through
    code, stderr = run_main(*TINY_RUN, f"hydra.run.dir={tmp_path}")
    monkeypatch.setattr(torch, "save", real_save)
    assert_one_line_exit_2(code, stderr, "could not write checkpoint", tmp_path)
    assert "No space left on device" in stderr and "could not write" in error_lines(stderr)[0]
    assert list((tmp_path / "checkpoints").iterdir()) == []  # neither a truncated .ckpt nor a temp file
    assert not (tmp_path / "results.json").exists()
