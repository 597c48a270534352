"""Confidence intervals: the textbook values, and coverage at the nominal rate on simulated Bernoulli data."""

from __future__ import annotations

import numpy as np
import pytest

from adv_smooth.reporting.intervals import t_interval, wilson

RUNS = 2000


def test_wilson_matches_the_textbook_interval() -> None:
    # 8 of 10: the Wilson score interval is [0.4902, 0.9433] (Agresti & Coull 1998); 0 of 20 keeps 0 inside
    assert wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson(0, 20)[0] == 0.0 and wilson(0, 20)[1] == pytest.approx(0.1611, abs=1e-4)
    with pytest.raises(ValueError, match="n > 0"):
        wilson(0, 0)


@pytest.mark.parametrize(("p", "n"), [(0.9, 400), (0.5, 100), (0.97, 1000)])
def test_wilson_covers_at_its_nominal_rate(p: float, n: int) -> None:
    """One run's accuracy over n test images: the 95 % interval holds the true accuracy in 93-97 % of runs."""
    rng = np.random.default_rng(0)
    hits = 0
    for k in rng.binomial(n, p, RUNS):
        lo, hi = wilson(int(k), n)
        hits += lo <= p <= hi
    assert 0.93 <= hits / RUNS <= 0.97


def test_normal_approximation_would_not_cover_near_the_edge() -> None:
    """Why Wilson: at 98 % on 100 images the textbook p ± 1.96·se interval covers far less than 95 %."""
    rng = np.random.default_rng(1)
    p, n = 0.98, 100
    k = rng.binomial(n, p, RUNS) / n
    half = 1.96 * np.sqrt(k * (1 - k) / n)
    assert np.mean((k - half <= p) & (p <= k + half)) < 0.90
    assert 0.93 <= np.mean([lo <= p <= hi for lo, hi in (wilson(int(round(x * n)), n) for x in k)]) <= 0.97


@pytest.mark.parametrize("seeds", [3, 5])
def test_t_interval_over_seeds_covers_the_recipes_accuracy(seeds: int) -> None:
    """Each seed trains a model whose accuracy varies around the recipe's (sd 2 points) and is measured on
    500 test images; the t-interval over the seeds holds the recipe's accuracy in 93-97 % of sweeps."""
    rng = np.random.default_rng(2)
    recipe = 0.85
    hits = 0
    for _ in range(RUNS):
        model_acc = rng.normal(recipe, 0.02, seeds)
        measured = rng.binomial(500, model_acc) / 500
        lo, hi = t_interval(list(measured))
        hits += lo <= recipe <= hi
    assert 0.93 <= hits / RUNS <= 0.97
