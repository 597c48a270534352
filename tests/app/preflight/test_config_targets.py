"""A run dir from someone else cannot run code through `python -m adv_smooth.evaluate` (app/preflight/targets.py).

Each payload is a `.hydra/config.yaml` whose `_target_` would create a marker file when built; the
evaluation must refuse it in one line (exit status 2) and the marker must never appear.
"""

from __future__ import annotations

import pathlib
from pathlib import Path
from typing import Any

import hydra
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from adv_smooth.app.preflight.targets import check_targets, moved_targets, refusal
from adv_smooth.utils.errors import UserError
from tests.conftest import compose_config
from tests.test_bad_inputs import assert_one_line_exit_2, completed_results, error_lines, run_main, run_process


class _Touch:
    """Unpickling this creates `marker`: what `torch.load(weights_only=False)` of a crafted file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def _payloads(tmp: Path, marker: Path) -> dict[str, tuple[str, Any]]:
    """name -> (config key, node) that would create `marker` if instantiated."""
    evil = tmp / "evil.pt"
    if tmp.is_dir():
        torch.save({"x": _Touch(marker)}, evil)
    touch = f"touch {marker}"
    return {
        "exec": ("model", {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w').close()"]}),
        "os.system": ("model", {"_target_": "os.system", "_args_": [touch]}),
        "torch.load": ("dataset", {"_target_": "torch.load", "f": str(evil), "weights_only": False}),
        "partial torch.load": (
            "optim.optimizer",
            {"_target_": "torch.load", "_partial_": True, "f": str(evil), "weights_only": False},
        ),
        "project function": (
            "defense.components.x",
            {"_target_": "adv_smooth.utils.io.write_text_atomic", "path": str(marker), "text": "pwned"},
        ),
        "nested in _args_": (
            "model",
            {
                "_target_": "adv_smooth.models.preact_resnet.PreActResNet",
                "_args_": [{"_target_": "os.system", "_args_": [touch]}],
            },
        ),
        "nested option": (
            "callbacks.robustness",
            {
                "_target_": "adv_smooth.lightning.robustness_callback.RobustnessVsSNR",
                "attacks": {"x": {"_target_": "os.system", "_args_": [touch]}},
            },
        ),
        "wrong kind": ("model", {"_target_": "adv_smooth.data.digits.DigitsDataModule"}),
        "interpolated": ("model", {"_target_": "${oc.env:EVIL_TARGET,os.system}", "_args_": [touch]}),
    }


def _victim_run(tmp: Path, key: str, node: Any) -> Path:
    """A run dir as `python -m adv_smooth` leaves it, with `node` planted at `key`; returns its checkpoint."""
    run = tmp / "downloaded_run"
    cfg = compose_config("trainer=cpu", output_dir=run)
    with open_dict(cfg):
        OmegaConf.update(cfg, key, node, merge=False, force_add=True)
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    (run / "checkpoints").mkdir()
    torch.save({"state_dict": {}, "epoch": 0}, run / "checkpoints" / "last.ckpt")
    return run / "checkpoints" / "last.ckpt"


NAMES = list(_payloads(Path("/unused"), Path("/unused")))


@pytest.mark.parametrize("name", NAMES)
def test_payload_in_saved_config_is_refused_before_anything_runs(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    key, node = _payloads(tmp_path, marker)[name]
    ckpt = _victim_run(tmp_path, key, node)
    out = tmp_path / "evaluation"
    code, stderr = run_main(f"ckpt={ckpt}", f"hydra.run.dir={out}", module="adv_smooth.evaluate")
    lines = error_lines(stderr)
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "refusing to build" in lines[0], stderr
    assert f"{key}" in lines[0] and "config.yaml" in lines[0]
    assert not marker.exists()
    assert not completed_results(out)


@pytest.mark.parametrize("name", ["torch.load", "project function"])
def test_the_payloads_are_live(name: str, tmp_path: Path) -> None:
    """Control: Hydra alone would run these (its own blocklist stops only the obvious ones)."""
    marker = tmp_path / "pwned"
    _, node = _payloads(tmp_path, marker)[name]
    hydra.utils.instantiate(OmegaConf.create(node))
    assert marker.exists()


def test_real_process_refuses_os_system_payload(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    key, node = _payloads(tmp_path, marker)["os.system"]
    ckpt = _victim_run(tmp_path, key, node)
    code, stderr = run_process("adv_smooth.evaluate", f"ckpt={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert_one_line_exit_2(code, stderr, "'os.system'")
    assert "model._target_" in error_lines(stderr)[0]
    assert not marker.exists()
    assert not list((tmp_path / "eval").glob("*.log"))  # Hydra's job log appears only when something is logged


@pytest.mark.parametrize(
    "overrides",
    [(), ("defense=adv_parseval_smooth", "logger=many", "optim=adam"), ("dataset=cifar10", "defense=adv_smooth")],
)
def test_the_projects_own_configs_pass(overrides: tuple[str, ...], tmp_path: Path) -> None:
    check_targets(compose_config(*overrides, output_dir=tmp_path), "composed")


def test_an_older_run_naming_a_renamed_module_is_read_as_the_new_one(tmp_path: Path) -> None:
    """A run dir saved before `lightning/robustness.py` became `robustness_callback.py` still passes the allowlist."""
    cfg = compose_config(output_dir=tmp_path)
    with open_dict(cfg):
        cfg.callbacks.robustness._target_ = "adv_smooth.lightning.robustness.RobustnessVsSNR"
    with pytest.raises(UserError, match="callbacks.robustness._target_=.* cannot be imported"):
        check_targets(cfg, "saved")
    moved_targets(cfg)
    assert cfg.callbacks.robustness._target_ == "adv_smooth.lightning.robustness_callback.RobustnessVsSNR"
    check_targets(cfg, "saved")


@pytest.mark.parametrize(
    ("target", "key", "reason"),
    [
        ("torch.optim.SGD", "optim.optimizer", None),
        ("torch.optim.lr_scheduler.MultiStepLR", "optim.scheduler", None),
        ("pytorch_lightning.Trainer", "trainer", None),
        ("torch.optim.SGD", "model", "is not a network class"),
        ("adv_smooth.attacks.fgsm.FGSM", "defense.components.x", "is not a defense class"),
        ("adv_smooth.utils.errors.require", "callbacks.x", "is not a class"),
        ("adv_smooth.no_such_module.Thing", "model", "cannot be imported"),
        ("subprocess.Popen", "logger.x", "is outside the packages"),
        ("adv_smooth.models.preact_resnet.PreActResNet; import os", "model", "is not a dotted class name"),
        (["os.system"], "model", "is not a dotted class name"),
    ],
)
def test_refusal_reasons(target: Any, key: str, reason: str | None) -> None:
    got = refusal(target, key)
    assert got is None if reason is None else (got is not None and reason in got), got


def test_outside_module_is_not_even_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dotted name is vetted before any import: a module with side effects on import never loads."""
    (tmp_path / "evil_module_on_path.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\nX = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="evil_module_on_path"):
        check_targets(OmegaConf.create({"model": {"_target_": "evil_module_on_path.X"}}), "x")
    assert not (tmp_path / "imported").exists()
