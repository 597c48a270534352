"""95 % confidence intervals for the report's accuracies: over a run's test images, and over seeds.

Why two kinds. A run's accuracy is a share of N test images, so as an estimate of that trained model's
accuracy on images like them it is binomial: the Wilson score interval covers at its nominal rate even
near 0 or 100 %, where the normal approximation (p ± 1.96·sqrt(p(1-p)/N)) undercovers and leaves [0, 1].
A recipe's accuracy also varies from seed to seed, which no amount of test images shows: with n >= 3
seeds the Student t-interval over the seeds' accuracies (n - 1 degrees of freedom) covers both sources,
since each seed's accuracy carries its own image noise. With one or two seeds the table falls back to
the Wilson interval of the pooled counts (all seeds' images together), which says how sure the number is
about these models, not about the recipe; the caption says which interval each row uses.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass
from typing import Any

from scipy import stats

from adv_smooth.reporting.jobs import Job
from adv_smooth.reporting.table import Table

LEVEL = 0.95
MIN_SEEDS_T = 3  # below this, a t-interval over seeds is too wide to say anything (t_{0.975,1} = 12.7)

WILSON = "wilson"
T_SEEDS = "t"
KIND_TEXT = {
    T_SEEDS: f"rows with n ≥ {MIN_SEEDS_T} seeds: over seeds (Student t, n − 1 degrees of freedom)",
    WILSON: "rows with fewer seeds: over the test images (Wilson score on the counts pooled over the row's seeds: "
    "these models, not the recipe)",
}


@functools.lru_cache(maxsize=8)
def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


@functools.lru_cache(maxsize=64)
def _t(level: float, df: int) -> float:
    return float(stats.t.ppf(0.5 + level / 2, df))


def wilson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval for a proportion k / n (as shares in [0, 1])."""
    if n <= 0:
        raise ValueError(f"wilson needs n > 0 images, got {n}")
    z = _z(level)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(values: list[float], level: float = LEVEL) -> tuple[float, float]:
    """Student t-interval for the mean of `values` (one accuracy per seed, any unit)."""
    if len(values) < 2:
        raise ValueError(f"a t-interval needs at least 2 values, got {len(values)}")
    mean = statistics.fmean(values)
    half = _t(level, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


@dataclass
class Interval:
    lo: float  # in %, like the table's cells
    hi: float
    kind: str  # WILSON or T_SEEDS


def images(job: Job, split: str, column: str) -> int | None:
    """How many images the job's number in `column` was measured on; None when results.json does not say.

    The robustness block records the attacked images' count. On the test split every image is attacked, so
    the clean column shares it; on validation only a subset is attacked and the clean accuracy (the whole
    validation split's) has no recorded count.
    """
    n = (((job.results.get("robustness") or {}).get(split)) or {}).get("n")
    if not isinstance(n, int) or n <= 0 or (column == "clean" and split != "test"):
        return None
    return n


def metric_key(table: Table, column: str) -> str:
    """The results.json scalar behind one cell (the inverse of build_tables' column naming)."""
    if column == "clean":
        return f"{table.split}/acc"
    return f"{table.split}/{table.attack}/snr{column}/{table.metric}"


def cell_interval(jobs: list[Job], table: Table, column: str, level: float = LEVEL) -> Interval | None:
    """The cell's interval: t over seeds when >= MIN_SEEDS_T jobs have the number, else pooled Wilson."""
    key = metric_key(table, column)
    measured = [(j, j.scalars()[key]) for j in jobs if math.isfinite(j.scalars().get(key, math.nan))]
    if not measured:
        return None
    if len(measured) >= MIN_SEEDS_T:
        lo, hi = t_interval([100.0 * v for _, v in measured], level)
        return Interval(max(0.0, lo), min(100.0, hi), T_SEEDS)
    counts = [(round(v * n), n) for j, v in measured if (n := images(j, table.split, column)) is not None]
    if len(counts) < len(measured):
        return None
    lo, hi = wilson(sum(k for k, _ in counts), sum(n for _, n in counts), level)
    return Interval(100.0 * lo, 100.0 * hi, WILSON)


def annotate(tables: list[Table], level: float = LEVEL) -> dict[tuple[str, int, str], Interval]:
    """Put every cell's interval into the tables (`Cell.interval`) and state the kinds used in each caption.

    Returns {(attack, row index, column): interval} for the CSV and the figures.
    """
    found: dict[tuple[str, int, str], Interval] = {}
    for table in tables:
        kinds: set[str] = set()
        for index, row in enumerate(table.rows):
            for column in table.columns:
                interval = cell_interval(row.group.jobs, table, column, level)
                if interval is not None:
                    row.cells[column].interval = (interval.lo, interval.hi)
                    found[(table.attack, index, column)] = interval
                    kinds.add(interval.kind)
        if kinds:
            used = "; ".join(KIND_TEXT[k] for k in (T_SEEDS, WILSON) if k in kinds)
            table.notes.append(f"[lo, hi]: {100 * level:g} % confidence interval; {used}.")
        else:
            table.notes.append(
                f"No confidence intervals: fewer than {MIN_SEEDS_T} seeds and no image count in results.json."
            )
    return found


def per_run_rows(tables: list[Table], level: float = LEVEL) -> list[dict[str, Any]]:
    """Every job's own Wilson interval per cell (over its test images), for intervals.csv."""
    rows: list[dict[str, Any]] = []
    for table in tables:
        for row in table.rows:
            for job in row.group.jobs:
                for column in table.columns:
                    value = job.scalars().get(metric_key(table, column))
                    n = images(job, table.split, column)
                    if value is None or not math.isfinite(value) or n is None:
                        continue
                    lo, hi = wilson(round(value * n), n, level)
                    rows.append(
                        {
                            "attack": table.attack,
                            "group": row.group.label(row.group.labels),
                            "job": str(job.path),
                            "seed": job.results.get("seed", ""),
                            "column": column,
                            "acc": f"{100 * value:.4f}",
                            "images": n,
                            "wilson_lo": f"{100 * lo:.4f}",
                            "wilson_hi": f"{100 * hi:.4f}",
                        }
                    )
    return rows
