"""The training task end to end: run dir contents and results.json."""

from __future__ import annotations

import json

import pytest

from adv_smooth.app.training_run import train


@pytest.mark.slow
def test_run_writes_config_events_checkpoints_and_results(make_config, tmp_path) -> None:
    cfg = make_config("logger=many", "eval.snr_levels=[33,20]")
    results = train(cfg)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["status"] == "completed" and saved["seed"] == cfg.seed
    assert 0.0 <= saved["metrics"]["test/acc"] <= 1.0
    assert saved["metrics"]["test/acc"] == results["metrics"]["test/acc"]
    assert {"val/acc", "train/ce_epoch", "train/loss_epoch"} <= set(saved["fit"])
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert list((tmp_path / "tensorboard").glob("*/events.out.tfevents.*"))  # in a directory named by the run
    assert (tmp_path / "csv" / "metrics.csv").exists()
    assert not list(tmp_path.glob(".results.json.*"))  # no temp file left behind
