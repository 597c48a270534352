"""Checkpoints chosen on robustness when robustness is trained for: with `callbacks.model_checkpoint.monitor: auto`
(the default) an adversarially trained run keeps the epoch of best robust validation accuracy (the probe's
`val/robust_acc`), not of best clean accuracy (robust overfitting, Rice, Wong & Kolter 2020); results.json and the
report say which metric chose; a vanilla run keeps choosing on val/acc."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from adv_smooth.app.report_run import report
from adv_smooth.defenses import Defense
from adv_smooth.defenses.adversarial import AdversarialTraining
from adv_smooth.defenses.base import Compose
from adv_smooth.defenses.parseval import Parseval
from adv_smooth.defenses.trades import Trades
from tests.test_bad_inputs import run_process

RUN = [
    "defense=adv",
    "trainer=cpu",
    "model.width=8",
    "model.blocks=[1,1]",
    "trainer.max_epochs=8",
    "eval=report",
    "eval.snr_levels=[25]",
    "eval.val_subset=300",
    "eval.val_every_n_epochs=1",
    "eval.val_snr_levels=[25]",
    "eval.test_subset=10",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "seed=0",
]


def test_adversarial_defenses_say_they_train_on_adversarial_examples() -> None:
    assert AdversarialTraining().trains_adversarially and Trades().trains_adversarially
    assert Compose([Parseval(), AdversarialTraining()]).trains_adversarially
    assert not Defense().trains_adversarially and not Compose([Parseval()]).trains_adversarially


@pytest.mark.slow
def test_the_robust_monitor_picks_the_best_robust_epoch_where_the_best_clean_one_differs(tmp_path: Path) -> None:
    code, stderr = run_process("adv_smooth", *RUN, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0, stderr[-3000:]
    (metrics,) = (tmp_path / "run").rglob("metrics.csv")
    by_epoch: dict[int, dict[str, float]] = {}
    for row in csv.DictReader(metrics.open()):
        for key in ("val/acc", "val/robust_acc"):
            if row.get(key):
                by_epoch.setdefault(int(float(row["epoch"])), {})[key] = float(row[key])
    best = {key: max(by_epoch, key=lambda e: (by_epoch[e][key], -e)) for key in ("val/acc", "val/robust_acc")}
    assert best["val/acc"] != best["val/robust_acc"], f"this seed's epochs must tell the monitors apart: {by_epoch}"
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["selected_on"] == "val/robust_acc" and results["best_epoch"] == best["val/robust_acc"]
    assert results["best_score"] == pytest.approx(by_epoch[best["val/robust_acc"]]["val/robust_acc"])
    assert results["tested_checkpoint"] == results["best_checkpoint"] != ""
    markdown, _ = report([str(tmp_path / "run")], out=tmp_path / "report", plots=False)
    assert "Tested weights chosen on: val/robust_acc (1 job)." in markdown
