"""Every defense preset trains (a few batches of an epoch) on digits through the real entry-point code."""

from __future__ import annotations

from pathlib import Path

import pytest

from adv_smooth.app.training_run import train
from tests.conftest import CONF

PRESETS = sorted(p.stem for p in (Path(CONF) / "defense").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_one_epoch(preset: str, make_config) -> None:
    options = [f"defense={preset}", "eval.snr_levels=[33]", "~eval.attacks.pgd", "eval.val_subset=64"]
    options += ["+trainer.limit_train_batches=6", "eval.test_subset=64"]  # the wiring, not the fit: a few batches
    cfg = make_config(*options)
    if "steps" in cfg.defense:  # iterative crafting (PGD training, TRADES): test the wiring, not the cost
        cfg = make_config(*options, "defense.steps=2")
    results = train(cfg)
    assert results["status"] == "completed"
    fit = results["fit"]
    assert fit["train/ce_epoch"] > 0
    if "smooth" in preset:
        assert fit["train/smooth_epoch"] >= 0
    assert 0 <= results["metrics"]["test/fgsm/snr33/acc"] <= 1


def test_preset_knobs_sit_at_the_top_of_the_group(make_config) -> None:
    cfg = make_config("defense=adv_smooth", "defense.gamma=0.001", "defense.m=1", "defense.snr=40")
    parts = cfg.defense.components
    assert (parts.smoothness.gamma, parts.smoothness.m, parts.adversarial.snr) == (0.001, 1, 40)
