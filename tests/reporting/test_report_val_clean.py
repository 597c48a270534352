"""`--split val`: the clean column counts the images the attacks saw (a subset of the validation split), and the
accuracy-vs-SNR figure keeps groups apart (offset error bars, n per group, the attack and image count)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adv_smooth.reporting import plots
from adv_smooth.reporting.jobs import find_jobs
from adv_smooth.reporting.table import build_tables, group_jobs
from adv_smooth.utils.plotting import MARKERS


def _job(root: Path, num: int, defense: str, seed: int, whole: float, subset: float, attacked: float) -> None:
    job = root / str(num)
    job.mkdir(parents=True)
    results = {
        "status": "completed",
        "seed": seed,
        "choices": {"defense": defense},
        "config": {"seed": seed, "defense": {"name": defense}},
        "fit": {"val/acc": whole, "val/fgsm/snr33/acc": attacked},  # whole split / the attacked subset
        "metrics": {},
        "robustness": {
            "val": {
                "n": 64,
                "clean_acc": subset,
                "attacks": {"fgsm": {"describe": "FGSM linf snr", "acc": {"snr33": attacked}}},
            }
        },
    }
    (job / "results.json").write_text(json.dumps(results))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for num, (defense, seed, whole, subset, attacked) in enumerate(
        [("vanilla", 0, 0.95, 0.80, 0.50), ("vanilla", 1, 0.97, 0.84, 0.52), ("adv", 0, 0.93, 0.82, 0.50)]
    ):
        _job(root, num, defense, seed, whole, subset, attacked)
    return root


def test_val_clean_column_is_the_attacked_subsets(sweep: Path) -> None:
    groups, _ = group_jobs(find_jobs([sweep]))
    (table,) = build_tables(groups, split="val")
    clean = {row.group.jobs[0].choices["defense"]: row.cells["clean"] for row in table.rows}
    assert clean["vanilla"].mean == pytest.approx(82.0) and clean["adv"].mean == pytest.approx(82.0)
    assert clean["vanilla"].values == pytest.approx([80.0, 84.0])  # not val/acc's 95 and 97


def test_accuracy_figure_offsets_groups_and_names_n_and_budget(sweep: Path, monkeypatch, tmp_path: Path) -> None:
    groups, _ = group_jobs(find_jobs([sweep]))
    (table,) = build_tables(groups, split="val")
    saved = []
    monkeypatch.setattr(plots, "save_formats", lambda fig, path: saved.append(fig) or path)
    plots.plot_accuracy_vs_snr(table, [g.jobs[0].choices["defense"] for g in groups], tmp_path / "fig.png")
    (ax,) = saved[0].axes
    lines = [line for line in ax.get_lines() if line.get_marker() in MARKERS]  # the data lines, not the caps
    xs = [sorted(x for line in lines if line.get_marker() == m for x in line.get_xdata()) for m in MARKERS[:2]]
    assert len(xs[0]) == len(xs[1]) == 2 and all(a != b for a, b in zip(*xs))  # same columns, drawn side by side
    assert "fgsm (FGSM linf snr), 64 val images" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["vanilla (n=2)", "adv (n=1)"]


def test_accuracy_figure_spaces_levels_at_their_db_and_clips_error_bars(monkeypatch, tmp_path: Path) -> None:
    """Levels at their dB values (clean past a break), a marker and dash per group, mean ± std within [0, 100]."""
    from types import SimpleNamespace

    from adv_smooth.reporting.table import Cell, Row, Table

    group = SimpleNamespace(jobs=[SimpleNamespace(results={}), SimpleNamespace(results={})])
    rows = [
        Row(group, {"clean": Cell([99.0, 100.0]), "33": Cell([90.0, 92.0]), "20": Cell([0.0, 5.0])}, [], 0, False, []),
        Row(group, {"clean": Cell([99.0, 100.0]), "33": Cell([90.0, 92.0]), "20": Cell([0.0, 5.0])}, [], 0, False, []),
    ]
    table = Table("pgd", "test", "acc", ["clean", "33", "20"], rows)
    saved = []
    monkeypatch.setattr(plots, "save_formats", lambda fig, path: saved.append(fig) or path)
    plots.plot_accuracy_vs_snr(table, ["a", "b"], tmp_path / "fig.png")
    (ax,) = saved[0].axes
    lines = [line for line in ax.get_lines() if line.get_marker() in MARKERS]
    assert len({(line.get_marker(), line.get_linestyle()) for line in lines}) == 2, "coinciding groups told apart"
    ticks = {t.get_text(): t.get_position()[0] for t in ax.get_xticklabels()}
    assert ticks["33 dB"] == pytest.approx(33.0) and ticks["20 dB"] == pytest.approx(20.0)
    assert ticks["clean"] > 33.0 and ax.xaxis_inverted()
    caps = [y for line in ax.get_lines() if line.get_marker() == "_" for y in line.get_ydata()]
    assert caps and min(caps) >= 0.0 and max(caps) <= 100.0, "mean ± std clipped to [0, 100] %"
    assert plots.clipped_errors([1.0, 99.0], [3.0, 3.0]) == [[1.0, 3.0], [3.0, 1.0]]
    assert plots.snr_positions(["clean", "fixed", "33"]) == {"clean": 40.5, "fixed": 37.5, "33": 33.0}
