"""Every config group option composes, and the help lists the groups."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONF, compose_config, option_override

GROUPS = sorted(p.name for p in Path(CONF).iterdir() if p.is_dir() and p.name not in ("hydra", "hparams_search"))
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((Path(CONF) / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_group_option_composes(group: str, option: str, tmp_path: Path) -> None:
    cfg = compose_config(option_override(group, option), output_dir=tmp_path)
    assert cfg.dataset.batch_size >= 1
    assert cfg.model._target_.endswith(("PreActResNet", "Normalized"))


def test_daily_keys_exist(tmp_path: Path) -> None:
    cfg = compose_config(output_dir=tmp_path)
    for key in (
        "dataset.root",
        "dataset.download",
        "dataset.batch_size",
        "dataset.augment",
        "model.width",
        "optim.lr",
        "trainer.max_epochs",
        "seed",
    ):
        node, *path = key.split(".")
        value = cfg[node]
        for part in path:
            assert part in value, key
            value = value[part]


def test_seed_recipe_is_the_default_optimizer(tmp_path: Path) -> None:
    cfg = compose_config(output_dir=tmp_path)
    assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == (0.1, 0.9, 5e-4)
    assert list(cfg.optim.milestones) == [0.6] and cfg.optim.lr * cfg.optim.gamma == pytest.approx(0.001)  # 5 of 8


def test_help_lists_the_groups() -> None:
    out = subprocess.run([sys.executable, "-m", "adv_smooth", "--help"], capture_output=True, text=True, check=True)
    for group in ("dataset:", "model:", "defense:", "optim:", "trainer:", "logger:", "callbacks:"):
        assert group in out.stdout
    assert "adv_smooth" in out.stdout
