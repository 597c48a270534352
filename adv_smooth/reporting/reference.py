"""The study's published numbers beside the reproduced ones (`--reference`), with the difference.

The numbers ship with the package (study_numbers.json: the report's Tables 1-2 and the CIFAR-10 table of
Laplacian Power Networks). A reproduced row stands beside a study row only when its settings match:
the same defense, beta, gamma and m, and the config keys the study row names (augmentation, the
un-augmented share); a row whose settings match no study row is left out of this table, not forced in.
`--reference` alone uses the study tables of the runs' datasets; `--reference <table>` compares with that
table whatever the dataset, and the caption says so, since then the difference measures the dataset and
the recipe, not a reproduction.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

from adv_smooth.reporting.table import MISSING, Cell, Group, Table

AUTO = "auto"
_NUMBERS = "study_numbers.json"


def study() -> dict[str, Any]:
    """The shipped study tables: {name: table}."""
    return json.loads(resources.files("adv_smooth.reporting").joinpath(_NUMBERS).read_text(encoding="utf-8"))["tables"]


def names() -> list[str]:
    return list(study())


def _same(ours: Any, theirs: Any) -> bool:
    """Equal as numbers when both read as numbers (`0.01` == 0.01, `0` == False), else as text."""
    try:
        return math.isclose(float(ours), float(theirs), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return str(ours) == str(theirs)


def matches(group: Group, row: dict[str, Any]) -> bool:
    """Whether every job of the group has the study row's settings."""
    labels = group.labels
    if labels.get("defense") != row["defense"]:
        return False
    if not all(_same(labels.get(column, 0), row[knob]) for column, knob in (("β", "beta"), ("γ", "gamma"), ("m", "m"))):
        return False
    for job in group.jobs:
        flat = job.hyperparameters()
        if not all(key in flat and _same(flat[key], value) for key, value in row.get("config", {}).items()):
            return False
    return True


def _dataset(group: Group) -> str:
    return group.jobs[0].choices.get("dataset", "?") if group.jobs else "?"


def _experiment(group: Group) -> str | None:
    return group.jobs[0].choices.get("experiment") if group.jobs else None


@dataclass
class Line:
    """One study row and the reproduced group that matches it, column by column."""

    study_label: str
    group: int  # index into the groups (and every table's rows)
    study: list[float]
    ours: list[Cell | None]


@dataclass
class Side:
    name: str
    table: dict[str, Any]
    lines: list[Line]
    caveats: list[str]


def _cell(tables: dict[str, Table], column: dict[str, Any], group: int) -> Cell | None:
    """Our cell for a study column: the clean column of any table, or the named attack's table at the level."""
    if column["attack"] is None:
        table = next(iter(tables.values()), None)
        return table.rows[group].cells.get("clean") if table else None
    table = tables.get(column["attack"])
    if table is None:
        return None
    level = float(column["level"])
    for name in table.columns[1:]:
        if math.isclose(float(name), level):
            return table.rows[group].cells[name]
    return None


def side_by_side(which: str, groups: list[Group], tables: list[Table]) -> tuple[list[Side], list[str]]:
    """The study tables to show and their matched rows; plus lines saying why a table was not shown."""
    tables_by_attack = {t.attack: t for t in tables}
    available = study()
    datasets = sorted({_dataset(g) for g in groups})
    chosen = [n for n, t in available.items() if t["dataset"] in datasets] if which == AUTO else [which]
    notes = []
    if tables and (tables[0].split, tables[0].metric) != ("test", "acc"):
        notes.append(
            f"The study's numbers are test accuracies per level; the numbers beside them are "
            f"{tables[0].split}/{tables[0].metric}."
        )
    if not chosen:
        notes.append(
            f"No study table is on these runs' dataset ({', '.join(datasets)}); name one to compare anyway: "
            f"--reference {' | '.join(available)}."
        )
    sides = []
    for name in chosen:
        table = available[name]
        lines = []
        for row in table["rows"]:
            for index, group in enumerate(groups):
                if matches(group, row) and (which != AUTO or _dataset(group) == table["dataset"]):
                    cells = [_cell(tables_by_attack, c, index) for c in table["columns"]]
                    lines.append(Line(row["label"], index, [float(v) for v in row["values"]], cells))
        caveats = _caveats(name, table, [groups[line.group] for line in lines])
        if not lines:
            notes.append(f"{name}: no row here has the settings of one of its rows (defense, β, γ, m, augmentation).")
        sides.append(Side(name, table, lines, caveats))
    return sides, notes


def _caveats(name: str, table: dict[str, Any], matched: list[Group]) -> list[str]:
    out = []
    datasets = sorted({_dataset(g) for g in matched})
    if datasets and datasets != [table["dataset"]]:
        out.append(
            f"These runs are on {', '.join(datasets)}, the study's on {table['dataset']}: the difference "
            f"measures the dataset and the recipe, not a reproduction."
        )
    recipes = sorted({_experiment(g) or "(none)" for g in matched})
    if matched and recipes != [table["experiment"]]:
        out.append(
            f"Recipe: experiment={', '.join(recipes)}, not the study's experiment={table['experiment']} "
            f"(python -m adv_smooth -m experiment={table['experiment']})."
        )
    return out


def _ours(cell: Cell | None) -> str:
    if cell is None or cell.mean is None:
        return MISSING
    text = f"{cell.mean:.2f}" + (f" ± {cell.std:.2f}" if cell.std is not None else "")
    if cell.interval is not None:
        text += f" [{cell.interval[0]:.1f}, {cell.interval[1]:.1f}]"
    return text


def difference(study_value: float, cell: Cell | None) -> str:
    """`+1.20`, and `(outside CI)` when the study's number lies outside our 95 % interval."""
    if cell is None or cell.mean is None:
        return MISSING
    text = f"{cell.mean - study_value:+.2f}"
    if cell.interval is not None and not cell.interval[0] <= study_value <= cell.interval[1]:
        text += " (outside CI)"
    return text


def side_markdown(side: Side, labels: list[str]) -> str:
    """Three lines per matched row: the study's numbers, ours (mean ± std [CI]), and ours minus the study's."""
    table = side.table
    header = ["study row", "", *(c["name"] for c in table["columns"])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for line in side.lines:
        n = len(line.ours[0].values) if line.ours and line.ours[0] is not None else 0
        lines.append("| " + " | ".join([line.study_label, "study", *(f"{v:g}" for v in line.study)]) + " |")
        lines.append("| " + " | ".join([labels[line.group], f"ours (n={n})", *map(_ours, line.ours)]) + " |")
        diffs = [difference(v, c) for v, c in zip(line.study, line.ours)]
        lines.append("| " + " | ".join(["", "Δ ours − study", *diffs]) + " |")
    parts = [f"### The study beside these runs: {table['title']}", ""]
    parts += [f"Source: {table['source']}; {table['runs']}." + (f" {table['note']}" if table.get("note") else "")]
    parts += side.caveats + ["", *lines] if side.lines else side.caveats
    return "\n".join(parts)


def side_rows(sides: list[Side], labels: list[str]) -> list[dict[str, Any]]:
    """reference.csv: one row per (study table, matched row, column)."""
    out = []
    for side in sides:
        for line in side.lines:
            for column, value, cell in zip(side.table["columns"], line.study, line.ours):
                mean = None if cell is None else cell.mean
                out.append(
                    {
                        "table": side.name,
                        "study_row": line.study_label,
                        "row": labels[line.group],
                        "column": column["name"],
                        "study": value,
                        "ours_mean": "" if mean is None else f"{mean:.4f}",
                        "ours_n": 0 if cell is None else cell.n,
                        "ci_lo": "" if cell is None or cell.interval is None else f"{cell.interval[0]:.4f}",
                        "ci_hi": "" if cell is None or cell.interval is None else f"{cell.interval[1]:.4f}",
                        "difference": "" if mean is None else f"{mean - value:.4f}",
                    }
                )
    return out
