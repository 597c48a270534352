"""Paired tests: McNemar's exact p by hand, Holm's step-down, the error rate under the null and the marks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from adv_smooth.app.report_run import main, report
from adv_smooth.reporting.paired import holm, mcnemar_exact
from tests.reporting.records_sweep import LEVELS, draw_records, write_records_job


def test_mcnemar_matches_the_exact_binomial_by_hand() -> None:
    """b = 2 images only the baseline gets right, c = 9 only the other row: under the null c ~ Bin(11, 1/2),
    so p = 2 * P(X <= 2) = 2 * (C(11,0) + C(11,1) + C(11,2)) / 2^11 = 2 * 67 / 2048."""
    assert mcnemar_exact(2, 9) == pytest.approx(2 * (1 + 11 + 55) / 2048, rel=1e-12)
    assert mcnemar_exact(9, 2) == mcnemar_exact(2, 9)  # two-sided
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    # 0 vs 6: 2 * (1/2)^6; stratified over seeds, (0, 3) and (0, 3) add up to the same exact test
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert math.comb(11, 2) == 55


def test_holm_step_down() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.04 becomes 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def _stratified_p(rng: np.random.Generator, p_base: float, p_row: float, n: int, seeds: int) -> float:
    b = c = 0
    for _ in range(seeds):
        base, row = rng.random(n) < p_base, rng.random(n) < p_row
        b, c = b + int((base & ~row).sum()), c + int((~base & row).sum())
    return mcnemar_exact(b, c)


def test_error_rate_under_the_null_and_power() -> None:
    """Two models of equal accuracy (independent errors) are called different in at most ~5 % of 1,000
    simulated pairs of 2 seeds; 80 % vs 87 % on 500 images is called different in >= 90 %."""
    rng = np.random.default_rng(0)
    null = [_stratified_p(rng, 0.8, 0.8, 500, 2) for _ in range(1000)]
    assert np.mean(np.array(null) < 0.05) <= 0.065
    power = [_stratified_p(rng, 0.8, 0.87, 500, 2) for _ in range(200)]
    assert np.mean(np.array(power) < 0.05) >= 0.9


def _sweep(root: Path, n: int = 1000) -> Path:
    """vanilla at 80 %; `smooth` at the same accuracies (differs only by chance); `adv` truly better."""
    rng = np.random.default_rng(7)
    rows = [("vanilla", {}, 0.80, 0.7), ("smooth", {"gamma": 0.01, "m": 2}, 0.80, 0.7), ("adv", {}, 0.90, 0.85)]
    num = 0
    for defense, knobs, clean, robust in rows:
        for seed in (0, 1):
            probs = {"fgsm": {LEVELS[0]: robust, LEVELS[1]: robust - 0.2}, "pgd": {LEVELS[0]: robust - 0.05}}
            records = draw_records(rng, n, clean, probs)
            write_records_job(root, num, records, seed=seed, defense=defense, knobs=knobs)
            num += 1
    return root


def _row(markdown: str, heading: str, first: str) -> list[str]:
    section = markdown.split(heading)[1].split("\n#")[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} under {heading!r}")


def test_rows_differing_by_chance_are_not_marked_and_true_differences_are(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path / "sweep")
    markdown, files = report([str(sweep)], tmp_path / "out", plots=False)
    fgsm_smooth = _row(markdown, "### fgsm:", "smooth")
    fgsm_adv = _row(markdown, "### fgsm:", "adv")
    # clean, 50 dB, 33 dB: every adv cell carries ↑, no smooth cell carries a mark
    assert [c.endswith("↑") for c in fgsm_adv[3:6]] == [True, True, True]  # after defense, γ, m
    assert not any(c.endswith(("↑", "↓")) for c in fgsm_smooth[3:6])
    assert "Holm-Bonferroni-adjusted over the 6 comparisons of this table" in markdown
    assert "baseline (vanilla)" in markdown
    diff = _row(markdown, "#### fgsm vs the baseline", "adv")
    assert diff[1].startswith("+") and diff[1].endswith("↑") and diff[-1] == "2"
    assert {f.name for f in files} >= {"comparisons.csv", "tables.tex", "report.tex", "intervals.csv"}
    csv_text = (tmp_path / "out" / "comparisons.csv").read_text()
    assert csv_text.startswith("attack,row,baseline,column,seed,b,c,diff,p,p_holm,mark")
    # 2 non-baseline rows x 3 columns x (2 seeds + their stratified total), for fgsm (pgd has 2 columns)
    assert sum(line.startswith("fgsm,") for line in csv_text.splitlines()) == 2 * 3 * 3


def test_baseline_choice(tmp_path: Path, capsys) -> None:
    sweep = _sweep(tmp_path / "sweep")
    markdown, _ = report([str(sweep)], tmp_path / "out", plots=False, baseline="adv")
    assert _row(markdown, "### fgsm:", "vanilla")[3].endswith("↓")
    assert "baseline (adv)" in markdown
    with pytest.raises(SystemExit) as info:
        main([str(sweep), "--out", str(tmp_path / "o2"), "--no-plots", "--baseline", "parseval"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --baseline 'parseval' matches no row") and "'vanilla'" in err and "\n" not in err
