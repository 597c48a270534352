"""--reference: the study's numbers beside the reproduced rows whose settings match, with the difference."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from adv_smooth.app.report_run import main, report
from adv_smooth.reporting.reference import study
from tests.reporting.records_sweep import draw_records, write_records_job

SVHN_LEVELS = (50.0, 45.0, 40.0, 33.0)


def _job(root: Path, num: int, defense: str, knobs: dict, dataset: str, row: str, clean: float, **extra) -> None:
    rng = np.random.default_rng(num)
    probs = {"fgsm": {lv: clean - 0.05 * i for i, lv in enumerate(SVHN_LEVELS, 1)}}
    records = draw_records(rng, 400, clean, probs)
    choices = {"experiment": row.split("/")[0], f"row/{row.split('/')[0]}": row.split("/")[1]}
    write_records_job(
        root, num, records, seed=0, defense=defense, knobs=knobs, dataset=dataset, choices=choices, **extra
    )


def _side(markdown: str) -> list[tuple[list[str], list[str], list[str]]]:
    """The side-by-side table as (study line, ours line, Δ line) triples of cells."""
    section = markdown.split("### The study beside these runs")[1]
    lines = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()]
    lines = [cells for cells in lines if len(cells) > 2 and cells[0] != "study row" and cells[0] != "---"]
    return [(lines[i], lines[i + 1], lines[i + 2]) for i in range(0, len(lines), 3)]


def test_study_rows_line_up_with_the_matching_runs(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    _job(root, 0, "vanilla", {}, "svhn", "svhn_table1/r01_vanilla", 0.95)
    _job(root, 1, "adv_smooth", {"gamma": 0.001, "m": 2}, "svhn", "svhn_table1/r09_adv_smooth_g0.001_m2", 0.96)
    _job(root, 2, "adv_smooth", {"gamma": 0.001, "m": 1}, "svhn", "svhn_table1/r07_adv_smooth_g0.001_m1", 0.97)
    _job(root, 3, "smooth", {"gamma": 0.005, "m": 2}, "svhn", "svhn_table1/r99_not_in_the_study", 0.90)
    markdown, _ = report([str(root)], tmp_path / "out", plots=False, reference="auto")
    assert "### The study beside these runs: Table 1 of the report: SVHN" in markdown
    side = _side(markdown)
    # in the study's order; γ=0.001 m=1 beside its own row (7), m=2 beside the leaking row (9); the γ=0.005
    # run matches no study row and is not forced in
    assert [(s[0], o[0]) for s, o, _ in side] == [
        ("Vanilla", "vanilla"),
        ("Adv + Smooth", "adv_smooth γ=0.001 m=1"),
        ("Adv + Smooth", "adv_smooth γ=0.001 m=2"),
    ]
    assert [s[2:] for s, _, _ in side] == [
        ["97.87", "95.57", "92.99", "88.15", "77.72"],
        ["97.46", "96.82", "96.2", "94.66", "88.7"],
        ["97.25", "94.43", "95.59", "96.49", "96.45"],
    ]
    for study_line, ours, diff in side:
        for theirs, mine, delta in zip(study_line[2:], ours[2:], diff[2:]):
            assert float(delta.split()[0]) == pytest.approx(float(mine.split()[0]) - float(theirs), abs=0.006)
    assert side[0][1][1] == "ours (n=1)" and side[0][2][1] == "Δ ours − study"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "reference.csv").read_text())))
    assert len(rows) == 3 * 5 and {r["table"] for r in rows} == {"svhn_table1"}
    vanilla_clean = next(r for r in rows if r["study_row"] == "Vanilla" and r["column"] == "clean")
    assert float(vanilla_clean["difference"]) == pytest.approx(float(vanilla_clean["ours_mean"]) - 97.87)
    assert study()["svhn_table1"]["rows"][8]["values"][-1] == 96.45  # the shipped file holds the report's numbers


def test_tiny_imagenet_rows_tell_augmentation_apart(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    _job(root, 0, "vanilla", {}, "tiny_imagenet", "tiny_imagenet_table2/r01_vanilla", 0.5)
    _job(root, 1, "vanilla", {}, "tiny_imagenet", "tiny_imagenet_table2/r02_da", 0.6, dataset_config={"augment": True})
    _job(
        root,
        2,
        "smooth",
        {"gamma": 0.01, "m": 2},
        "tiny_imagenet",
        "tiny_imagenet_table2/r08_smooth_da_unaug0.5_g0.01_m2",
        0.6,
        dataset_config={"augment": True, "unaugmented_fraction": 0.5},
    )
    markdown, _ = report([str(root)], tmp_path / "out", plots=False, reference="auto")
    side = _side(markdown)
    # the un-augmented-half row (not in the report) matches no study row, though its defense, γ and m do
    assert [(s[0], o[0]) for s, o, _ in side] == [
        ("Vanilla", "row=r01_vanilla vanilla"),
        ("data augmentation (da)", "row=r02_da vanilla"),
    ]
    assert side[0][0][2] == "49.11" and side[1][0][2] == "62.44"


def test_named_table_on_another_dataset_says_so(tmp_path: Path, capsys) -> None:
    root = tmp_path / "sweep"
    _job(root, 0, "vanilla", {}, "digits", "digits_demo/none", 0.95)
    markdown, _ = report([str(root)], tmp_path / "out", plots=False, reference="auto")
    assert "No study table is on these runs' dataset (digits)" in markdown
    markdown, _ = report([str(root)], tmp_path / "out", plots=False, reference="cifar10_lpn")
    assert "These runs are on digits, the study's on cifar10: the difference measures the dataset" in markdown
    assert _side(markdown)[0][0][2:] == ["88.06", "16.86", "33.64"]
    with pytest.raises(SystemExit) as info:
        main([str(root), "--no-plots", "--reference", "table9"])
    assert info.value.code == 2
    assert "invalid choice: 'table9'" in capsys.readouterr().err


def test_the_numbers_ship_with_the_package() -> None:
    """A wheel carries study_numbers.json only if pyproject names it as package data."""
    import tomllib

    from adv_smooth.reporting import reference

    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert reference._NUMBERS in config["tool"]["setuptools"]["package-data"]["adv_smooth.reporting"]
    assert set(study()) == {"svhn_table1", "tiny_imagenet_table2", "cifar10_lpn"}
    for table in study().values():
        assert all(len(row["values"]) == len(table["columns"]) for row in table["rows"])
