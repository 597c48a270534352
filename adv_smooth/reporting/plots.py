"""The report's figures as PNG files (matplotlib, Agg backend: no display needed).

* accuracy vs SNR per group with error bars (one figure per attack);
* the per-epoch training-loss curves per group (the report's Figures 1-2): total loss, cross-entropy and
  each defense term, mean over seeds with a +-1 std band. Read from the job's CSV log when there is one
  (cheap), else from its TensorBoard events.
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

from adv_smooth.reporting.jobs import Job
from adv_smooth.reporting.table import Table
from adv_smooth.utils.plotting import line_style, pyplot, save_formats

Curves = dict[str, dict[int, float]]  # term ("loss", "ce", "smooth", ...) -> {epoch: value}

_PREFIX, _SUFFIX = "train/", "_epoch"


def _term(tag: str) -> str | None:
    """`train/ce_epoch` -> `ce`; None for anything that is not a per-epoch training loss term."""
    if not (tag.startswith(_PREFIX) and tag.endswith(_SUFFIX)):
        return None
    name = tag[len(_PREFIX) : -len(_SUFFIX)]
    return None if name == "acc" or "/" in name else name


def _csv_curves(path: Path) -> Curves:
    curves: Curves = {}
    with path.open(newline="") as f:
        for record in csv.DictReader(f):
            epoch = record.get("epoch")
            for tag, value in record.items():
                term = _term(tag or "")
                if term and value not in (None, "") and epoch not in (None, ""):
                    curves.setdefault(term, {})[int(float(epoch))] = float(value)
    return curves


def _tensorboard_curves(directory: Path) -> Curves:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    events = EventAccumulator(str(directory), size_guidance={SCALARS: 0})
    events.Reload()
    tags = events.Tags().get(SCALARS, [])
    counter = next((t for t in ("train/epoch", "epoch") if t in tags), None)  # `epoch` before this release
    epoch_at = {e.step: int(e.value) for e in events.Scalars(counter)} if counter else {}
    curves: Curves = {}
    for tag in tags:
        term = _term(tag)
        if term is None:
            continue
        by_step = {e.step: e.value for e in events.Scalars(tag)}  # a resumed run may repeat steps: last wins
        for index, step in enumerate(sorted(by_step)):
            curves.setdefault(term, {})[epoch_at.get(step, index)] = float(by_step[step])
    return curves


def training_curves(job: Job) -> Curves:
    """The job's per-epoch training-loss terms; {} when it logged none."""
    for path in sorted(job.path.rglob("metrics.csv")):
        curves = _csv_curves(path)
        if curves:
            return curves
    event_dirs = sorted({p.parent for p in job.path.rglob("events.out.tfevents.*")})
    for directory in event_dirs:
        curves = _tensorboard_curves(directory)
        if curves:
            return curves
    return {}


def _db(column: str) -> float | None:
    try:
        return float(column)
    except ValueError:
        return None


def snr_positions(columns: list[str]) -> dict[str, float]:
    """Where each column sits on the x axis: an SNR level at its dB value (so 33 and 20 dB are 13 dB apart, as
    50 and 45 are 5); clean (and any other column without a level, such as a fixed budget) one and a half
    spacings to the left of the weakest level, past an axis break."""
    levels = {c: _db(c) for c in columns if _db(c) is not None}
    others = [c for c in columns if c not in levels]
    values = sorted(set(levels.values()), reverse=True)
    gaps = [a - b for a, b in zip(values, values[1:])]
    gap = min(max(3.0, min(gaps) if gaps else 3.0), 8.0)
    start = values[0] if values else 0.0
    return {**{c: start + gap * (1.5 + len(others) - 1 - i) for i, c in enumerate(others)}, **levels}


def clipped_errors(means: list[float], stds: list[float | None]) -> list[list[float]]:
    """`errorbar`'s yerr as [below, above]: mean ± std clipped to [0, 100] % (an accuracy cannot leave it)."""
    below = [min(s or 0.0, max(m, 0.0)) for m, s in zip(means, stds)]
    above = [min(s or 0.0, max(100.0 - m, 0.0)) for m, s in zip(means, stds)]
    return [below, above]


def plot_accuracy_vs_snr(table: Table, labels: list[str], path: Path) -> Path:
    """Clean accuracy then each SNR level (weakest noise first), a line with error bars per group.

    Levels sit at their dB values and clean left of them past an axis break (`snr_positions`); each group has its
    own marker and dash (coinciding groups stay visible); mean ± std is clipped to [0, 100] %.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    where = snr_positions(list(table.columns))
    xs = [where[c] for c in table.columns]
    span = sorted(set(xs))
    unit = min([b - a for a, b in zip(span, span[1:])] or [1.0])
    step = unit * min(0.08, 0.4 / max(1, len(table.rows)))  # groups side by side at each level: bars never overlap
    for i, (row, label) in enumerate(zip(table.rows, labels)):
        offset = (i - (len(table.rows) - 1) / 2) * step
        points = [(x + offset, row.cells[c]) for x, c in zip(xs, table.columns) if row.cells[c].mean is not None]
        if not points:
            continue
        style, color = line_style(i), None
        for part in (lambda c: _db(c) is None, lambda c: _db(c) is not None):  # clean apart: no line across the break
            chosen = [(x + offset, row.cells[c]) for x, c in zip(xs, table.columns) if part(c)]
            chosen = [(x, c) for x, c in chosen if c.mean is not None]
            if not chosen:
                continue
            means = [c.mean for _, c in chosen]
            bars = ax.errorbar(
                [x for x, _ in chosen],
                means,
                yerr=clipped_errors(means, [c.std for _, c in chosen]),
                markersize=5,
                capsize=3,
                color=color,
                label=None if color else f"{label} (n={len(row.group.jobs)})" + (" ⚠" if row.checks else ""),
                **style,
            )
            color = bars.lines[0].get_color()
        band = [(x, c.interval) for x, c in points if c.interval is not None]
        if band:  # the 95 % confidence interval of reporting/intervals.py
            lows, highs = [max(i[0], 0.0) for _, i in band], [min(i[1], 100.0) for _, i in band]
            ax.fill_between([x for x, _ in band], lows, highs, color=color, alpha=0.15)
    ax.set_xticks(xs, [c if c == "clean" else f"{c} dB" for c in table.columns])
    levels = [v for c, v in where.items() if _db(c) is not None]
    if levels and len(levels) < len(where):  # the axis break between clean and the levels
        clean = min(v for c, v in where.items() if _db(c) is None)
        ax.axvline((clean + max(levels)) / 2, color="grey", linewidth=0.8, linestyle=(0, (2, 2)))
    if len(xs) == 1 or span[-1] - span[0] < 6:
        middle = (span[0] + span[-1]) / 2
        ax.set_xlim(min(span[0], middle - 3), max(span[-1], middle + 3))
    ax.invert_xaxis()
    ax.set_xlabel("SNR, at its dB value (noise grows to the right; clean: no noise, left of the break)")
    ax.set_ylabel(f"{table.split} accuracy (%)")
    bands = any(c.interval is not None for r in table.rows for c in r.cells.values())
    ax.set_title(
        f"{_attacked(table)}: accuracy vs SNR\n(mean ± std over n seeds, clipped to [0, 100] %"
        f"{'; bands: 95 % CI' if bands else ''})",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    fig.tight_layout()
    return save_formats(fig, path)


def _attacked(table: Table) -> str:
    """`pgd (PGD linf snr), 512 images`: the attack, its norm and budget, and how many images it was run on."""
    for row in table.rows:
        for job in row.group.jobs:
            section = ((job.results.get("robustness") or {}).get(table.split)) or {}
            entry = (section.get("attacks") or {}).get(table.attack) or {}
            if isinstance(section, dict) and section.get("n"):
                what = f"{table.attack} ({entry['describe']})" if entry.get("describe") else table.attack
                return f"{what}, {section['n']} {table.split} images"
    return table.attack


def _mean_std(curves: list[dict[int, float]]) -> tuple[list[int], list[float], list[float]]:
    epochs = sorted({e for c in curves for e in c})
    means, stds = [], []
    for epoch in epochs:
        values = [c[epoch] for c in curves if epoch in c and math.isfinite(c[epoch])]
        means.append(statistics.fmean(values) if values else math.nan)
        stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    return epochs, means, stds


def plot_training_curves(curves_by_group: list[tuple[str, list[Curves]]], path: Path) -> Path | None:
    """One panel per loss term, a line per group (mean over its jobs, ±1 std band); None if nothing was logged."""
    terms: list[str] = []
    for _, job_curves in curves_by_group:
        for curves in job_curves:
            terms += [t for t in curves if t not in terms]
    if not terms:
        return None
    terms.sort(key=lambda t: (t != "loss", t != "ce", t))
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(terms), figsize=(4.5 * len(terms), 4), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for label, job_curves in curves_by_group:
            series = [c[term] for c in job_curves if term in c]
            if not series:
                continue
            epochs, means, stds = _mean_std(series)
            (line,) = ax.plot(epochs, means, marker=".", label=label)
            ax.fill_between(
                epochs,
                [m - s for m, s in zip(means, stds)],
                [m + s for m, s in zip(means, stds)],
                color=line.get_color(),
                alpha=0.2,
            )
        ax.set_title(f"train/{term} per epoch")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("loss (mean ± std over seeds)")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save_formats(fig, path)
