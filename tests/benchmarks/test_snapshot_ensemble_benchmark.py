"""Smoke test of benchmarks/snapshot_ensemble.py: tiniest settings, the JSON's shape, never timings."""

from __future__ import annotations

import json

import pytest

from benchmarks import snapshot_ensemble

pytestmark = pytest.mark.usefixtures("one_thread")


def test_snapshot_ensemble_benchmark_shape(tmp_path) -> None:
    out = tmp_path / "ensemble.json"
    result = snapshot_ensemble.main(["--members", "2", "--n", "4", "--width", "4", "--reps", "1", "--out", str(out)])
    assert set(result["cases"]) == {"1", "2"}
    assert result["cases"]["2"]["passes_per_attack_step"] == 2 and result["cases"]["2"]["vs_one_member"]["median"] > 0
    assert json.loads(out.read_text())["pgd_steps"] == 10
