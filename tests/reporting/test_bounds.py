"""The report's two-sided sections: certified lower beside empirical upper bounds (eval=certified) and the strongest
adversary beside natural noise at equal SNR (eval=natural), pooled over seeds, with their figures; the smoothed
classifier's certified accuracy is not an attack's table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adv_smooth.app.report_run import report
from adv_smooth.reporting import bounds
from adv_smooth.reporting.jobs import find_jobs
from adv_smooth.reporting.table import build_tables, group_jobs

PGD = {"norm": "linf", "budget": "snr", "iterative": True, "uses_gradients": True, "minimal_norm": False}
NOISE = {"norm": "l2", "budget": "snr", "iterative": False, "uses_gradients": False, "searched": False}


def _write(root: Path, num: int, seed: int, test: dict, metrics: dict) -> None:
    job = root / str(num)
    job.mkdir(parents=True)
    results = {
        "status": "completed",
        "seed": seed,
        "choices": {"defense": "gaussian"},
        "config": {"seed": seed, "defense": {"name": "gaussian"}},
        "metrics": {"test/acc": test["clean_acc"], **metrics},
        "robustness": {"test": test},
    }
    (job / "results.json").write_text(json.dumps(results))


def _certified_job(root: Path, num: int, seed: int, shift: float) -> None:
    test = {
        "n": 100,
        "clean_acc": 0.9,
        "worst": {"acc": {"snr40": 0.8, "snr20": 0.3 + shift}},
        "attacks": {"pgd": {"acc": {"snr40": 0.8, "snr20": 0.3 + shift}, "traits": PGD}},
        "certified": {
            "smoothed_clean_acc": 0.85,
            "acc": {"snr40": 0.7, "snr20": 0.1 + shift},
            "empirical_acc": {"snr40": 0.8, "snr20": 0.4 + shift},
        },
    }
    metrics = {"test/pgd/snr40/acc": 0.8, "test/pgd/snr20/acc": 0.3 + shift}
    metrics |= {"test/certified/snr40/acc": 0.7, "test/certified/snr20/acc": 0.1 + shift}
    _write(root, num, seed, test, metrics)


def _natural_job(root: Path, num: int, seed: int) -> None:
    attacks = {
        "pgd": {"acc": {"snr30": 0.5}, "traits": PGD},
        "fgsm": {"acc": {"snr30": 0.6}, "traits": {**PGD, "iterative": False}},
        "noise_gaussian": {"acc": {"snr30": 0.88}, "traits": NOISE},
        "noise_impulse": {"acc": {"snr30": 0.80}, "traits": NOISE},
    }
    test = {"n": 100, "clean_acc": 0.9, "attacks": attacks, "worst": {"acc": {"snr30": 0.5}}}
    metrics = {f"test/{a}/snr30/acc": e["acc"]["snr30"] for a, e in attacks.items()}
    _write(root, num, seed, test, metrics)


@pytest.fixture
def certified_sweep(tmp_path: Path) -> Path:
    root = tmp_path / "certified"
    _certified_job(root, 0, 0, 0.0)
    _certified_job(root, 1, 1, 0.1)
    return root


def test_bounds_section_pools_seeds_and_orders_lower_below_upper(certified_sweep: Path) -> None:
    groups, extras = group_jobs(find_jobs([certified_sweep]))
    text = "\n".join(bounds.sections(groups, [g.label(extras) for g in groups]))
    assert "## Certified lower and empirical upper bounds" in text
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["certified (smoothed, lower bound)"].endswith("| 85.00 ± 0.00 | 70.00 ± 0.00 | 15.00 ± 7.07 |")
    assert rows["PGD on the smoothed (upper bound)"].endswith("| 85.00 ± 0.00 | 80.00 ± 0.00 | 45.00 ± 7.07 |")
    assert rows["worst case on the base network"].endswith("| 90.00 ± 0.00 | 80.00 ± 0.00 | 35.00 ± 7.07 |")


def test_certified_accuracy_is_not_an_attacks_table(certified_sweep: Path) -> None:
    groups, _ = group_jobs(find_jobs([certified_sweep]))
    assert [t.attack for t in build_tables(groups)] == ["pgd"]


def test_natural_section_puts_the_strongest_adversary_beside_chance(tmp_path: Path) -> None:
    root = tmp_path / "natural"
    _natural_job(root, 0, 0)
    groups, extras = group_jobs(find_jobs([root]))
    text = "\n".join(bounds.sections(groups, [g.label(extras) for g in groups]))
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["strongest adversary"].endswith("| 90.00 | 50.00 |"), "the lowest of pgd and fgsm"
    assert rows["noise_impulse (chance)"].endswith("| 90.00 | 80.00 |")
    assert rows["adversary beyond chance (points)"].endswith("| 30.00 |"), "80 (impulse, the most harmful) - 50"
    (table,) = [t for t in build_tables(groups) if t.attack == "noise_gaussian"]
    assert table.rows[0].checks == [], "noise above an adversary's curve is chance, not a failing attack"


def test_no_section_without_either_evaluation(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    _write(root, 0, 0, {"n": 10, "clean_acc": 0.9, "attacks": {"pgd": {"acc": {"snr30": 0.5}, "traits": PGD}}}, {})
    groups, extras = group_jobs(find_jobs([root]))
    assert bounds.sections(groups, [g.label(extras) for g in groups]) == []


def test_the_report_writes_both_figures(certified_sweep: Path, tmp_path: Path) -> None:
    _natural_job(tmp_path / "natural", 0, 0)
    markdown, files = report([str(certified_sweep), str(tmp_path / "natural")], out=tmp_path / "out")
    names = {f.name for f in files}
    assert {"bounds.png", "bounds.pdf", "natural_vs_adversarial.png", "natural_vs_adversarial.pdf"} <= names
    assert "Adversarial vs natural noise at equal SNR" in markdown and "Bounds from both sides" in markdown
    assert (tmp_path / "out" / "bounds.png").stat().st_size > 10_000
