"""Grouping jobs by everything but the seed, and the report's tables (mean +- std over seeds).

Two jobs belong to one group when their resolved configs and Hydra choices are equal once the seed and
the paths inside each job's own directory are left out. The table shows the defense and the knobs that matter
for the defenses present (`reporting/columns.py`: β, γ, m, the training budget `snr`) and, before them, only
the other settings needed to tell the groups apart: candidate keys (Hydra choices first, then config keys,
shallow before deep) are added one by one, and a key is kept only if it splits groups the columns so far
cannot tell apart. So a sweep over rows shows a `row` column, a sweep over `dataset.augment` shows that key,
and keys that merely follow the defense stay out. The resulting labels are unique per group. Beside the test
accuracy, a `val` column gives the validation accuracy of the tested weights.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from adv_smooth.reporting.columns import MISSING, SOURCES, defense_columns, defense_values, is_off, tested_val_acc
from adv_smooth.reporting.columns import number as _number
from adv_smooth.reporting.jobs import COMPLETED, Job
from adv_smooth.robustness.honesty import Traits, check_curves, level_key

CERTIFIED = "certified"  # the smoothed classifier's logged accuracies (eval=certified), not an attack's
VAL = "val (tested weights)"  # the validation accuracy beside a test table (columns.tested_val_acc)


@dataclass
class Group:
    """Completed jobs with equal hyperparameters; `labels` maps each table column to its text."""

    jobs: list[Job]
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, columns: Iterable[str]) -> str:
        """Short text for legends and notes: knobs the defense lacks (β/γ/m shown as 0, snr as –) are left out."""
        parts = []
        for column in columns:
            value = self.labels[column]
            if column == "defense":
                parts.append(value)
            elif not is_off(column, value):
                parts.append(f"{column}={value}")
        return " ".join(parts)


@dataclass
class Cell:
    values: list[float]
    interval: tuple[float, float] | None = None  # 95 % confidence interval in %, from reporting/intervals.py
    mark: str = ""  # ↑ / ↓: differs from the baseline row (reporting/paired.py)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


@dataclass
class Row:
    group: Group
    cells: dict[str, Cell]
    checks: list[str]  # honesty checks that fired for this attack, in a job or on the group's mean curve
    flagged: int  # how many of the group's jobs they fired in
    on_mean: bool  # whether they fire on the mean curve over seeds
    messages: list[str]
    val: Cell | None = None  # validation accuracy (%) beside a test table; None for the val split itself


@dataclass
class Table:
    attack: str
    split: str
    metric: str
    columns: list[str]  # "clean", then the SNR levels from the weakest noise (highest SNR) to the strongest
    rows: list[Row]
    notes: list[str] = field(default_factory=list)  # the caption: how intervals and marks were computed


def _header(key: str) -> str:
    """`choice:row/svhn_table1` -> `row`; config keys stay dotted."""
    return key.removeprefix("choice:").split("/")[0] if key.startswith("choice:") else key


def _candidate_order(key: str) -> tuple[int, int, str]:
    return (0 if key.startswith("choice:") else 1, key.count("."), key)


def group_jobs(jobs: list[Job]) -> tuple[list[Group], list[str]]:
    """Groups of completed jobs (in the order their first job appears) and the label columns shown, in order:
    the settings that tell groups apart, then the defense and its knobs (`reporting/columns.py`)."""
    completed = [j for j in jobs if j.status == COMPLETED]
    params = [j.hyperparameters() for j in completed]
    keys = sorted({k for p in params for k in p}, key=_candidate_order)
    values = [defense_values(j) for j in completed]
    fixed = defense_columns(values)
    parts = [tuple(_number(v[c]) for c in fixed) for v in values]
    extras: list[str] = []
    for key in keys:
        if key in SOURCES:
            continue
        values = [p.get(key, MISSING) for p in params]
        seen: dict[tuple, Any] = {}
        if any(seen.setdefault(part, v) != v for part, v in zip(parts, values)):
            extras.append(key)
            parts = [(*part, v) for part, v in zip(parts, values)]
    short = [_header(k) for k in extras]
    headers = [h if short.count(h) == 1 else k.removeprefix("choice:") for h, k in zip(short, extras)]
    groups: dict[tuple, Group] = {}
    for job, part in zip(completed, parts):
        if part not in groups:
            labels = dict(zip(headers, (_number(v) for v in part[len(fixed) :])))
            groups[part] = Group([], {**labels, **dict(zip(fixed, part[: len(fixed)]))})
        groups[part].jobs.append(job)
    return list(groups.values()), [*headers, *fixed]


def level_label(level: float) -> str:
    """The column title of an SNR level: `33`, `22.5` (the metric names' `snr<level>` without `snr`)."""
    return level_key(level).removeprefix("snr")


def attack_levels(jobs: list[Job], split: str, metric: str) -> dict[str, list[float]]:
    """{attack: [levels, highest SNR first]} found in the jobs' `<split>/<attack>/snr<level>/<metric>` keys. The
    certified accuracy (`<split>/certified/...`) is not an attack's: another classifier's lower bound, it has its
    own section (`reporting/bounds.py`)."""
    pattern = re.compile(rf"^{re.escape(split)}/([^/]+)/snr([-+0-9.eE]+)/{re.escape(metric)}$")
    found: dict[str, set[float]] = {}
    for job in jobs:
        for key in job.scalars():
            match = pattern.match(key)
            if match and match.group(1) != CERTIFIED:
                found.setdefault(match.group(1), set()).add(float(match.group(2)))
    return {attack: sorted(levels, reverse=True) for attack, levels in sorted(found.items())}


def _metric_key(split: str, attack: str, level: float, metric: str) -> str:
    return f"{split}/{attack}/{level_key(level)}/{metric}"


def _percent(job: Job, key: str) -> float | None:
    value = job.scalars().get(key)
    return 100.0 * value if value is not None and math.isfinite(value) else None


def _clean_percent(job: Job, split: str) -> float | None:
    """The clean column: the clean accuracy of the images the attacks saw (`robustness.<split>.clean_acc`).

    On the val split the attacks see a subset (`eval.val_subset`), so the whole split's `val/acc` would
    compare other images with the attacked columns; a job without attacks falls back to `<split>/acc`.
    """
    section = ((job.results.get("robustness") or {}).get(split)) or {}
    value = section.get("clean_acc") if isinstance(section, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return 100.0 * value
    return _percent(job, f"{split}/acc")


def _mean_curve_warnings(group: Group, levels_by_attack: dict[str, list[float]], split: str, metric: str) -> list:
    """The honesty rules (adv_smooth/robustness/honesty.py) applied to the group's mean curves over seeds.

    A row can be dishonest on average while each seed stays under the tolerance, like the report's
    "adv + smooth, gamma=0.001, m=2" row whose accuracy rises with the noise.
    """
    clean = Cell([v for v in (_clean_percent(j, split) for j in group.jobs) if v is not None]).mean
    if clean is None:
        return []
    curves: dict[str, dict[float, float]] = {}
    for attack, levels in levels_by_attack.items():
        for level in levels:
            values = [_percent(j, _metric_key(split, attack, level, metric)) for j in group.jobs]
            mean = Cell([v for v in values if v is not None]).mean
            if mean is not None:
                curves.setdefault(attack, {})[level] = mean / 100.0
    return check_curves(clean / 100.0, curves, _traits(group, split))


def _traits(group: Group, split: str) -> dict[str, Traits] | None:
    """What each attack is (stored by the evaluation), so the dominance rules apply to the mean curves too;
    None for a cascade, whose per-attack accuracies are cumulative (after this attack and every earlier one)."""
    for job in group.jobs:
        section = ((job.results.get("robustness") or {}).get(split)) or {}
        if section.get("cascade"):
            return None
        traits = {a: Traits.from_dict(e.get("traits")) for a, e in (section.get("attacks") or {}).items()}
        if traits and all(traits.values()):
            return traits
    return None


def build_tables(groups: list[Group], split: str = "test", metric: str = "acc") -> list[Table]:
    """One table per attack (a single clean-only table when no attack was evaluated)."""
    jobs = [j for g in groups for j in g.jobs]
    levels_by_attack = attack_levels(jobs, split, metric) or {"none": []}
    mean_warnings = [_mean_curve_warnings(g, levels_by_attack, split, metric) for g in groups]
    tables = []
    for attack, levels in levels_by_attack.items():
        keys = {"clean": f"{split}/acc"} | {level_label(lv): _metric_key(split, attack, lv, metric) for lv in levels}
        rows = []
        for group, on_mean in zip(groups, mean_warnings):
            cells = {}
            for column, key in keys.items():
                values = [_clean_percent(j, split) if column == "clean" else _percent(j, key) for j in group.jobs]
                cells[column] = Cell([v for v in values if v is not None])
            fired = [(j, w) for j in group.jobs for w in j.warnings() if w.get("attack") in (None, "", attack)]
            mean_fired = [w for w in on_mean if w.get("attack") == attack]
            checks = sorted({str(w.get("check", "?")) for w in [*(w for _, w in fired), *mean_fired]})
            messages = sorted({f"{w.get('check', '?')}: {w.get('message', '')}" for _, w in fired})
            messages += sorted({f"{w['check']} (mean over seeds): {w['message']}" for w in mean_fired})
            flagged = len({id(j) for j, _ in fired})
            val = Cell([100 * v for v in map(tested_val_acc, group.jobs) if v is not None and math.isfinite(v)])
            rows.append(Row(group, cells, checks, flagged, bool(mean_fired), messages, val if split != "val" else None))
        tables.append(Table(attack, split, metric, list(keys), rows))
    return tables


def format_cell(cell: Cell, group_size: int) -> str:
    if cell.mean is None:
        return MISSING
    text = f"{cell.mean:.2f}" if cell.std is None else f"{cell.mean:.2f} ± {cell.std:.2f}"
    if cell.interval is not None:
        text += f" [{cell.interval[0]:.1f}, {cell.interval[1]:.1f}]"
    text = text if cell.n == group_size else f"{text} (n={cell.n})"
    return f"{text} {cell.mark}" if cell.mark else text


def honesty_text(row: Row) -> str:
    """`⚠ non_monotone (1/3 jobs, mean curve)`: which checks fired, and where."""
    if not row.checks:
        return ""
    where = [f"{row.flagged}/{len(row.group.jobs)} jobs"] if row.flagged else []
    where += ["mean curve"] if row.on_mean else []
    return f"⚠ {', '.join(row.checks)} ({', '.join(where)})"


def _val_cells(table: Table) -> list[Cell] | None:
    """Each row's validation accuracy, when the table is not itself on the val split and some job has one."""
    cells = [row.val for row in table.rows]
    return cells if all(c is not None for c in cells) and any(c.mean is not None for c in cells) else None


def table_markdown(table: Table, extras: list[str]) -> str:
    """The table in the report's layout, accuracies in % (mean ± sample std over seeds), n = jobs.
    `extras`: the label columns (`group_jobs`)."""
    vals = _val_cells(table)
    header = [*extras, *([VAL] if vals else []), *table.columns, "n", "honesty"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = []
    for i, row in enumerate(table.rows):
        n = len(row.group.jobs)
        cells = [format_cell(c, n) for c in [*([vals[i]] if vals else []), *(row.cells[c] for c in table.columns)]]
        labels = [row.group.labels[c] for c in extras]
        lines.append("| " + " | ".join([*labels, *cells, str(n), honesty_text(row)]) + " |")
        notes += [f"- ⚠ {row.group.label(extras)}: {m}" for m in row.messages]
    title = f"{table.attack}: {table.split}/{table.attack}/snr*/{table.metric}"
    if table.attack == "none":
        title = f"clean accuracy: {table.split}/acc (no attack was evaluated)"
    parts = [f"### {title} (%, mean ± std over seeds)", "", *table.notes, *([""] if table.notes else []), *lines]
    if notes:
        parts += ["", "Honesty checks that fired (the attack may be failing, not the model resisting):", *notes]
    return "\n".join(parts)


def tables_csv(tables: list[Table], extras: list[str]) -> str:
    """All tables in one CSV: a row per (attack, group); mean, std and n per column, accuracies in %.
    `extras`: the label columns (`group_jobs`), β and γ spelled beta and gamma."""
    levels: list[str] = []
    for table in tables:
        levels += [c for c in table.columns if c not in levels]
    ascii_names = [{"β": "beta", "γ": "gamma"}.get(e, e) for e in extras]
    val = any(_val_cells(t) for t in tables)
    header = ["attack", "split", "metric", *ascii_names, "n"]
    for column in (["val"] if val else []) + levels:
        name = column if column in ("clean", "val") else f"snr{column}"
        header += [f"{name}_mean", f"{name}_std", f"{name}_n"]
    header.append("honesty")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for table in tables:
        for row in table.rows:
            labels = row.group.labels
            line: list[Any] = [table.attack, table.split, table.metric, *(labels[e] for e in extras)]
            line.append(len(row.group.jobs))
            for column in (["val"] if val else []) + levels:
                cell = row.val if column == "val" else row.cells.get(column)
                if cell is None or cell.mean is None:
                    line += ["", "", 0]
                else:
                    line += [f"{cell.mean:.4f}", "" if cell.std is None else f"{cell.std:.4f}", cell.n]
            line.append(";".join(row.checks))
            writer.writerow(line)
    return out.getvalue()
