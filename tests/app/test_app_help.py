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
