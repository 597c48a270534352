"""`--help` of each entry point starts with its own usage line; the training help names the other two."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.conftest import CONF
from tests.test_bad_inputs import run_main


def _header(config_name: str) -> str:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name, return_hydra_config=True).hydra.help.header


def test_each_entry_point_has_its_own_usage_line() -> None:
    train, evaluate = _header("config").splitlines(), _header("evaluate").splitlines()
    assert train[1].startswith("Usage: python -m adv_smooth [group=option ...]")
    assert any("python -m adv_smooth.evaluate ckpt=" in line for line in train)
    assert any("python -m adv_smooth.report " in line for line in train)
    assert evaluate[1].startswith("Usage: python -m adv_smooth.evaluate ckpt=")
    assert not any(line.startswith("Usage: python -m adv_smooth [") for line in evaluate)


@pytest.mark.slow
def test_evaluate_help_prints_its_usage(capsys: pytest.CaptureFixture) -> None:
    """The real `--help` (Hydra composes and lists every group: a few seconds)."""
    code, _ = run_main("--help", module="adv_smooth.evaluate")
    out = capsys.readouterr().out
    assert code == 0 and out.splitlines()[1].startswith("Usage: python -m adv_smooth.evaluate ckpt=")


def test_help_describes_each_key_from_the_reference_source() -> None:
    """`--help`'s config: every key the reference describes carries its one-line meaning (app/config_help.py)."""
    from omegaconf import OmegaConf

    from adv_smooth.app.config_help import described_yaml
    from tests.conftest import compose_config

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        help_cfg = compose("config", return_hydra_config=True).hydra.help
        template = OmegaConf.to_container(help_cfg, resolve=False)["template"]
    assert "${described_config:}" in template and "$CONFIG" not in template
    choices = {"defense": "adv_smooth", "optim": "sgd", "dataset": "digits", "eval": "default"}
    cfg = compose_config("defense=adv_smooth")
    text = described_yaml(cfg, {**choices, "eval/attack@eval.attacks.pgd_l2": "pgd"})
    lines = text.splitlines()
    assert "seed: 0  # seeds every generator" in text
    assert any(line.startswith("  gamma: 0.01  # γ, the smoothness weight") for line in lines)
    assert any(line.startswith("  lr: 0.1  # the initial learning rate") for line in lines)
    assert any(line.strip().startswith("steps: 10  # ") for line in lines), "the attacks' keys too"
    # eval=default builds on eval=report (its defaults list): report's comment, not another preset's (autoattack's)
    assert any(line.startswith("  sanity_snr_db: -10  # also attack at this very low SNR") for line in lines)
    assert any(line.startswith("  val_subset: null  # images of the validation split") for line in lines)
    assert all(len(line.split("  # ", 1)[-1]) <= 100 for line in lines), "one line each"
    described = sum("  # " in line for line in lines if not line.lstrip().startswith("- "))
    assert described > 60, described
    # every key with a value of its own says what it does (a mapping's keys carry theirs; list items have none)
    bare = [line for line in lines if ": " in line and not line.lstrip().startswith("- ") and "  # " not in line]
    assert not bare, bare[:10]
