"""The report's defense columns (reporting/columns.py): the knobs the defenses present have, none that no row sets."""

from __future__ import annotations

from pathlib import Path

from adv_smooth.reporting.jobs import find_jobs
from adv_smooth.reporting.table import group_jobs
from tests.app.test_report import write_job


def _columns(tmp_path: Path, rows: list[tuple[str, dict]]) -> tuple[list[str], list[dict[str, str]]]:
    for num, (defense, knobs) in enumerate(rows):
        write_job(tmp_path, num, seed=0, defense=defense, knobs=knobs, acc=0.9, fgsm={"50": 0.8, "33": 0.5})
    groups, columns = group_jobs(find_jobs([tmp_path]))
    return columns, [g.labels for g in groups]


def test_vanilla_and_adv_differ_by_the_budget(tmp_path: Path) -> None:
    columns, labels = _columns(tmp_path, [("vanilla", {}), ("adv", {"snr": 33.0}), ("adv", {"snr": 40.0})])
    assert columns == ["defense", "snr"]  # no β, γ, m: neither defense has them
    assert [(lb["defense"], lb["snr"]) for lb in labels] == [("vanilla", "–"), ("adv", "33"), ("adv", "40")]


def test_knobs_set_to_off_everywhere_are_not_columns(tmp_path: Path) -> None:
    """γ = 0 in every row says nothing; a Parseval β does, and a defense without it reads 0 (no such term)."""
    rows = [("smooth", {"gamma": 0, "m": 0}), ("parseval", {"beta": 0.01}), ("vanilla", {})]
    columns, labels = _columns(tmp_path, rows)
    assert columns == ["defense", "β"]
    assert [lb["β"] for lb in labels] == ["0", "0.01", "0"]
