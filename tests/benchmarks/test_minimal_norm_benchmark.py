"""benchmarks/minimal_norm.py: its quality arithmetic, and its whole run at the tiniest size (never timings)."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from benchmarks import minimal_norm


def test_quality_counts_the_images_whose_minimal_snr_is_below_each_level() -> None:
    snr = torch.tensor([55.0, 42.0, 30.0, 12.0, math.inf, -math.inf])  # +inf: wrong clean; -inf: never broken
    clean = torch.tensor([True, True, True, True, False, True])
    reference = torch.tensor([55.0, 41.0, 30.5, 12.0, math.inf, -math.inf])
    q = minimal_norm.quality(snr, clean, reference)
    assert q["accuracy_pct"]["50"] == pytest.approx(100 * 4 / 6)  # 42, 30, 12 and the unbroken one
    assert q["accuracy_pct"]["40"] == pytest.approx(100 * 3 / 6)
    assert q["accuracy_pct"]["10"] == pytest.approx(100 * 1 / 6)
    assert q["median_diff_db"] == pytest.approx(0.0)  # diffs 0, +1, -0.5, 0 (finite, clean only)
    assert q["share_worse_0.1db"] == pytest.approx(0.25) and q["share_better_0.1db"] == pytest.approx(0.25)


def test_the_preset_it_times_is_the_composed_eval_minimal() -> None:
    attacks, levels, cascade = minimal_norm.preset()
    assert [type(a).__name__ for a in attacks.values()] == ["DDN", "PGD"]
    assert levels == [50.0, 45.0, 40.0, 33.0] and cascade is True


@pytest.mark.skipif(
    importlib.util.find_spec("adv_lib") is None, reason="adv-lib not installed (pip install --no-deps adv-lib)"
)
def test_a_tiny_run_has_every_field_and_check(tmp_path) -> None:
    torch.set_num_threads(1)
    model, x, y = minimal_norm.cnn_model(16)
    result = minimal_norm.compare(model, x, y, reps=1)
    assert result["n"] == 16 and set(result["checks"]) == {
        "cpu_ratio_within_limit",
        "no_level_less_broken",
        "median_norm_not_larger",
    }
    for run in ("preset", "reference", "fmn_preset"):
        assert result[run]["cpu_s"]["median"] > 0 and set(result[run]["accuracy_pct"]) >= {"50", "33", "10"}
    assert result["reference"]["median_diff_db"] == 0.0, "the reference against itself"
    assert result["preset"]["cpu_ratio"]["median"] > 0
    table = minimal_norm.format_report({"models": {"cnn": result}})
    assert "fmn_preset" in table and "cpu_ratio_within_limit" in table
