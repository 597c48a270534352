"""Figures that repeat: the default job's recipe at reduced size, seed 0, lands in the band measured over seeds on
the development machine (benchmarks/results/default_band_cpu.json, `python -m benchmarks.default_band`), widened by
its margin: a fresh clone on another CPU may break a tie differently, but not land elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_bad_inputs import run_process

BAND = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "default_band_cpu.json"


@pytest.mark.slow
def test_the_reduced_default_job_lands_in_the_documented_band(tmp_path: Path) -> None:
    band = json.loads(BAND.read_text())
    code, stderr = run_process("adv_smooth", *band["recipe"], "seed=0", f"hydra.run.dir={tmp_path}")
    assert code == 0, stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    measured = {"clean": results["metrics"]["test/acc"], **results["robustness"]["test"]["worst"]["acc"]}
    for key, (low, high) in band["band"].items():
        assert low - band["margin"] <= measured[key] <= high + band["margin"], (key, measured[key], low, high)
