"""Paired comparisons with a baseline row on the same test images: exact McNemar, stratified by seed, Holm.

Why paired: two rows evaluated on the same test images share most of their sampling noise (easy images
are easy for both), so comparing which images each gets right is far more sensitive than comparing two
accuracies with their own intervals. McNemar's test uses only the discordant images, b (baseline right,
row wrong) and c (baseline wrong, row right): with equal accuracies each discordant image falls either
way with probability 1/2, so c ~ Binomial(b + c, 1/2), an exact test with no chi-square approximation.

Over seeds, seed s of a row is paired with seed s of the baseline. Given each seed's discordant count,
the c_s are independent Binomial(b_s + c_s, 1/2) under the null, so their sum is Binomial(sum of b_s + c_s,
1/2): the stratified exact McNemar test is the exact binomial test on the discordant counts summed over
the paired seeds. Unlike combining two-sided per-seed p-values (Fisher, Stouffer), it keeps the
direction, so seeds that disagree cancel instead of adding up to a "difference".

What it tests: these trained models on these images. Whether the recipe wins across seeds is what the
t-intervals over seeds show; comparisons.csv keeps every seed's own counts and p-value. Multiple
comparisons: Holm-Bonferroni over every (row, column) comparison of one table (one attack), controlling
the family-wise error at ALPHA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from adv_smooth.data.identity import split_identity
from adv_smooth.reporting.intervals import metric_key
from adv_smooth.reporting.jobs import Job
from adv_smooth.reporting.table import Group, Table
from adv_smooth.robustness.records import Records
from adv_smooth.utils.errors import UserError

ALPHA = 0.05
DEFAULT_BASELINE = "vanilla"
BETTER, WORSE = "↑", "↓"
RECORDS_FILE = "per_image_{split}.npz"


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 when there are none)."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), n, 0.5)))


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone), in the input order."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass
class SeedPair:
    seed: object
    b: int  # baseline right, row wrong
    c: int  # baseline wrong, row right
    diff: float  # row - baseline accuracy, points
    p: float


@dataclass
class Comparison:
    attack: str
    row: int  # index into table.rows
    column: str
    pairs: list[SeedPair]
    p: float = math.nan
    p_holm: float = math.nan

    @property
    def b(self) -> int:
        return sum(s.b for s in self.pairs)

    @property
    def c(self) -> int:
        return sum(s.c for s in self.pairs)

    @property
    def diff(self) -> float:
        """Mean over the paired seeds of the row's accuracy minus the baseline's, in points."""
        return float(np.mean([s.diff for s in self.pairs]))

    def mark(self) -> str:
        if not self.p_holm < ALPHA:
            return ""
        return BETTER if self.c > self.b else WORSE


@dataclass
class Outcome:
    """What compare() found: the comparisons per table (attack)."""

    baseline: int | None
    comparisons: dict[str, list[Comparison]] = field(default_factory=dict)


def pick_baseline(groups: list[Group], labels: list[str], wanted: str | None) -> tuple[int | None, str]:
    """The baseline group's index for `--baseline` (a row's label, or a defense with a single row).

    An explicit choice that matches nothing, or several rows, is a UserError; the default (vanilla) only
    leaves the report without comparisons when absent, and takes the first vanilla row when there are several.
    """
    if wanted is None and len(groups) == 1:
        return None, ""  # a single run: nothing to compare, nothing to explain beyond the caption
    name = wanted or DEFAULT_BASELINE
    exact = [i for i, label in enumerate(labels) if label == name]
    by_defense = [i for i, g in enumerate(groups) if g.labels.get("defense") == name]
    found = exact or by_defense
    if len(found) == 1:
        return found[0], ""
    listed = "; ".join(repr(label) for label in labels)
    if wanted is not None:
        what = "matches no row" if not found else f"matches {len(found)} rows"
        raise UserError(f"--baseline {wanted!r} {what}: give one row's label exactly, one of {listed}")
    if not found:
        return None, f"no paired comparisons: no {DEFAULT_BASELINE} row to compare with (choose one with --baseline)"
    return found[0], f"baseline: the first of {len(found)} {name} rows (choose another with --baseline)"


def _seed(job: Job) -> object:
    return job.results.get("seed", job.config.get("seed"))


_cache: dict[tuple[Path, int], Records | None] = {}


def load_records(job: Job, split: str) -> Records | None:
    """The job's per-image records of `split`, or None when it has none (validation keeps none) or they are
    unreadable. Read once per file version: every table and column of the report reuses them."""
    section = ((job.results.get("robustness") or {}).get(split)) or {}
    name = section.get("records") or RECORDS_FILE.format(split=split)
    path = job.path / Path(str(name)).name  # a bare file name beside results.json, never a path elsewhere
    if not path.is_file():
        return None
    key = (path, path.stat().st_mtime_ns)
    if key not in _cache:
        try:
            _cache[key] = Records.load(path)
        except (OSError, ValueError, KeyError):
            _cache[key] = None
    return _cache[key]


def correct_mask(records: Records, table: Table, column: str) -> np.ndarray | None:
    """(N,) bool: the images that count as correct in this cell, computed as results.json's number was."""
    if column == "clean":
        return records.clean
    level = float(column)
    if table.attack == "worst":
        masks = records.worst_correct() if table.metric == "acc" else {}
        return masks.get(level)
    if table.attack not in records.attacks:
        return None
    masks = records.correct(table.attack)
    if level not in masks:
        return None
    if table.metric == "cumulative_acc":
        running = records.clean.copy()
        for lv, mask in masks.items():  # weak to strong: robust at this and every weaker level
            running &= mask
            if lv == level:
                return running
    return masks[level]


def _mask(job: Job, table: Table, column: str) -> tuple[Records, np.ndarray] | None:
    """(records, correct) for one job's cell, or None when its records are absent or disagree with results.json."""
    records = load_records(job, table.split)
    if records is None:
        return None
    mask = correct_mask(records, table, column)
    value = job.scalars().get(metric_key(table, column))
    if mask is None or value is None or abs(float(mask.mean()) - value) > 0.5 / max(records.n, 1):
        return None
    return records, mask


def same_images(base: Job, other: Job, split: str, a: Records, b: Records) -> bool:
    """Whether two jobs' records of `split` are of the same images, so McNemar may pair them image by image.

    Equal index arrays are not enough: CIFAR-10 and CIFAR-100 both number their test images 0..9999. The
    dataset config (`data/identity.py`: the keys that decide which images there are) must agree, so must the
    labels image by image, and so must the split's fingerprint where both runs recorded one (older runs did not).
    """
    if split_identity(base.config.get("dataset")) != split_identity(other.config.get("dataset")):
        return False
    if a.index.shape != b.index.shape or not np.array_equal(a.index, b.index) or not np.array_equal(a.label, b.label):
        return False
    prints = [(job.results.get("split_fingerprints") or {}).get(split) for job in (base, other)]
    return None in prints or prints[0] == prints[1]


def _pair(base: Job, other: Job, table: Table, column: str) -> SeedPair | None:
    a, b = _mask(base, table, column), _mask(other, table, column)
    if a is None or b is None or not same_images(base, other, table.split, a[0], b[0]):
        return None
    right_base, right_row = a[1].astype(bool), b[1].astype(bool)
    n_b, n_c = int((right_base & ~right_row).sum()), int((~right_base & right_row).sum())
    diff = 100.0 * (float(right_row.mean()) - float(right_base.mean()))
    return SeedPair(_seed(base), n_b, n_c, diff, mcnemar_exact(n_b, n_c))


def compare(tables: list[Table], baseline: int | None) -> Outcome:
    """Every other row vs the baseline row, per table and column; marks the cells (`Cell.mark`) that differ
    after Holm's correction and writes the method into each table's caption."""
    outcome = Outcome(baseline)
    if baseline is None:
        for table in tables:
            table.notes += ["One row: no paired comparisons."] if len(table.rows) == 1 else []
        return outcome
    for table in tables:
        base_jobs = {_seed(j): j for j in table.rows[baseline].group.jobs}
        found: list[Comparison] = []
        unpaired = 0  # (job, column) cells left out of the tests: no baseline seed, or no usable records
        for index, row in enumerate(table.rows):
            if index == baseline:
                continue
            for column in table.columns:
                pairs = [
                    _pair(base_jobs[_seed(j)], j, table, column) if _seed(j) in base_jobs else None
                    for j in row.group.jobs
                ]
                unpaired += sum(p is None for p in pairs)
                if any(pairs):
                    found.append(Comparison(table.attack, index, column, [p for p in pairs if p is not None]))
        for comparison in found:
            comparison.p = mcnemar_exact(comparison.b, comparison.c)
        for comparison, p_holm in zip(found, holm([c.p for c in found])):
            comparison.p_holm = p_holm
            table.rows[comparison.row].cells[comparison.column].mark = comparison.mark()
        outcome.comparisons[table.attack] = found
        table.notes.append(_caption(table, baseline, found))
        if found and unpaired:
            table.notes.append(
                f"{unpaired} (run, column) cells are not in the tests: no baseline run with the same seed on the same "
                f"dataset and images, or no per-image records matching results.json (comparisons.csv lists the pairs "
                f"tested)."
            )
    return outcome


def _caption(table: Table, baseline: int, found: list[Comparison]) -> str:
    base = table.rows[baseline].group
    name = base.label(list(base.labels))
    if len(table.rows) == 1:
        return "One row: no paired comparisons."
    if not found:
        why = "the test split's per-image records" if table.split == "test" else "per-image records (test split only)"
        return f"No paired tests against the baseline ({name}): no row shares seeds, dataset, images and {why} with it."
    return (
        f"{BETTER} / {WORSE}: better / worse than the baseline ({name}) on the same test images: exact McNemar "
        f"test stratified by seed (exact binomial on the discordant images summed over paired seeds), "
        f"Holm-Bonferroni-adjusted over the {len(found)} comparisons of this table, p < {ALPHA:g}. It tests "
        f"these trained models on these images; seed-to-seed variation is in the intervals."
    )


def paired_markdown(table: Table, comparisons: list[Comparison], labels: list[str]) -> str:
    """The differences with the baseline: Δ in points (mean over paired seeds), Holm-adjusted p, mark."""
    if not comparisons:
        return ""
    by_row: dict[int, dict[str, Comparison]] = {}
    for comparison in comparisons:
        by_row.setdefault(comparison.row, {})[comparison.column] = comparison
    header = ["row", *table.columns, "seeds paired"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, cells in by_row.items():
        texts = []
        for column in table.columns:
            c = cells.get(column)
            texts.append("–" if c is None else f"{c.diff:+.2f} (p={c.p_holm:.2g}){' ' + c.mark() if c.mark() else ''}")
        seeds = max(len(c.pairs) for c in cells.values())
        lines.append("| " + " | ".join([labels[index], *texts, str(seeds)]) + " |")
    title = f"#### {table.attack} vs the baseline: difference in points (Holm-adjusted p)"
    return "\n".join([title, "", *lines])


def comparison_rows(outcome: Outcome, tables: list[Table], labels: list[str]) -> list[dict[str, object]]:
    """One CSV row per (table, row, column, seed) and one for the stratified total (seed = `all`)."""
    out: list[dict[str, object]] = []
    for table in tables:
        for c in outcome.comparisons.get(table.attack, []):
            common = {"attack": table.attack, "row": labels[c.row], "baseline": labels[outcome.baseline or 0]}
            for s in c.pairs:
                out.append(common | {"column": c.column, "seed": s.seed, "b": s.b, "c": s.c, "diff": f"{s.diff:.4f}"})
                out[-1] |= {"p": f"{s.p:.6g}", "p_holm": "", "mark": ""}
            out.append(common | {"column": c.column, "seed": "all", "b": c.b, "c": c.c, "diff": f"{c.diff:.4f}"})
            out[-1] |= {"p": f"{c.p:.6g}", "p_holm": f"{c.p_holm:.6g}", "mark": c.mark()}
    return out
