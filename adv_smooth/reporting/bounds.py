"""Two readings of a group's robustness the per-attack tables cannot give, as report sections and figures.

* **Bounds from both sides** (`eval=certified`): at each SNR level, the smoothed classifier's certified accuracy
  (a lower bound: no attack can do better than it, up to the Monte-Carlo level alpha), an empirical attack on that
  same smoothed classifier (PGD on its soft expectation, Salman et al. 2019: an upper bound), and the worst case
  of the attacks on the base network (an upper bound too, of another classifier). The truth for the smoothed
  classifier lies between the first two; the gap is what neither side could settle.
* **The adversary beside chance** (`eval=natural`): the strongest adversary's accuracy beside each natural noise
  law's at the same per-image SNR, and how many points the adversary takes beyond the most harmful law.

Read from each job's `robustness.<split>` block of results.json; mean ± std over the group's seeds. A group
without the block adds nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adv_smooth.reporting.table import Cell, Group, format_cell, level_label
from adv_smooth.robustness.honesty import Traits
from adv_smooth.utils.plotting import pyplot, save_formats

Rows = dict[str, dict[str, Cell]]  # row label -> {column ("clean", "33", ...): cell in %}


def _section(job: Any, split: str) -> Mapping[str, Any]:
    section = ((job.results.get("robustness") or {}).get(split)) or {}
    return section if isinstance(section, Mapping) else {}


def _percent(value: object) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return 100.0 * float(value) if ok else None


def _levels(per_level: Mapping[str, Any]) -> list[float]:
    return [float(k.removeprefix("snr")) for k in per_level if k.startswith("snr")]


def _collect(group: Group, split: str, read) -> tuple[Rows, list[float]]:
    """`read(section) -> {row: (clean, {level key: accuracy})}` per job, pooled into cells over the group's jobs."""
    rows: Rows = {}
    levels: set[float] = set()
    for job in group.jobs:
        for row, (clean, per_level) in read(_section(job, split)).items():
            cells = rows.setdefault(row, {})
            value = _percent(clean)
            if value is not None:
                cells.setdefault("clean", Cell([])).values.append(value)
            for key, acc in per_level.items():
                value = _percent(acc)
                if value is not None:
                    cells.setdefault(level_label(float(key.removeprefix("snr"))), Cell([])).values.append(value)
            levels.update(_levels(per_level))
    return rows, sorted(levels, reverse=True)


def _sandwich(section: Mapping[str, Any]) -> dict[str, tuple[object, Mapping[str, Any]]]:
    certified = section.get("certified")
    if not isinstance(certified, Mapping):
        return {}
    smoothed_clean = certified.get("smoothed_clean_acc")
    rows = {"certified (smoothed, lower bound)": (smoothed_clean, certified.get("acc") or {})}
    if certified.get("empirical_acc"):
        rows["PGD on the smoothed (upper bound)"] = (smoothed_clean, certified["empirical_acc"])
    worst = (section.get("worst") or {}).get("acc") if isinstance(section.get("worst"), Mapping) else None
    if worst:
        rows["worst case on the base network"] = (section.get("clean_acc"), worst)
    return rows


def _natural(section: Mapping[str, Any]) -> dict[str, tuple[object, Mapping[str, Any]]]:
    """The strongest adversary (lowest accuracy among the attacks that search, per level) and each noise law;
    {} unless both kinds ran, independently (in a cascade the accuracies are cumulative, not comparable)."""
    attacks = section.get("attacks") or {}
    if section.get("cascade") or not isinstance(attacks, Mapping):
        return {}
    drawn = {}
    searched = {}
    for name, entry in attacks.items():
        traits = Traits.from_dict(entry.get("traits")) if isinstance(entry, Mapping) else None
        if traits is not None and isinstance(entry.get("acc"), Mapping):
            (searched if traits.searched else drawn)[name] = entry["acc"]
    if not drawn or not searched:
        return {}
    keys = sorted({k for acc in searched.values() for k in acc})
    strongest = {k: min(acc[k] for acc in searched.values() if k in acc) for k in keys}
    clean = section.get("clean_acc")
    return {"strongest adversary": (clean, strongest), **{f"{n} (chance)": (clean, a) for n, a in drawn.items()}}


def _margin(rows: Rows) -> dict[str, Cell]:
    """Points the adversary takes beyond the most harmful noise law, per level (group means)."""
    adversary = rows.get("strongest adversary", {})
    laws = [cells for row, cells in rows.items() if row != "strongest adversary"]
    margin: dict[str, Cell] = {}
    for column, cell in adversary.items():
        chances = [c[column].mean for c in laws if column in c and c[column].mean is not None]
        if column != "clean" and chances and cell.mean is not None:
            margin[column] = Cell([min(chances) - cell.mean])
    return margin


def _markdown(title: str, caption: str, label: str, rows: Rows, levels: list[float], n: int) -> list[str]:
    columns = ["clean", *(level_label(lv) for lv in levels)]
    header = ["", *(c if c == "clean" else f"{c} dB" for c in columns)]
    lines = [f"### {title}: {label}", "", caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, cells in rows.items():
        lines.append("| " + " | ".join([row, *(format_cell(cells.get(c, Cell([])), n) for c in columns)]) + " |")
    return lines


SANDWICH_CAPTION = (
    "Accuracy (%, mean ± std over seeds). Certified: the smoothed classifier cannot be broken inside the radius, "
    "up to alpha; PGD on the smoothed classifier: what an attack reached. The truth for the smoothed classifier lies "
    "between them. The base network's worst case is another classifier's, for comparison."
)
NATURAL_CAPTION = (
    "Accuracy (%, mean ± std over seeds) at the same per-image SNR: the strongest adversary (lowest accuracy among "
    "the attacks that search) beside noise drawn at random; the last row is how many points the adversary takes "
    "beyond the most harmful noise law."
)


def sections(groups: list[Group], labels: list[str], split: str = "test") -> list[str]:
    """The report's Markdown sections: bounds from both sides, then the adversary beside chance; [] when no
    group has either evaluation."""
    parts: dict[str, list[str]] = {"sandwich": [], "natural": []}
    for group, label in zip(groups, labels):
        n = len(group.jobs)
        rows, levels = _collect(group, split, _sandwich)
        if rows:
            parts["sandwich"] += ["", *_markdown("Bounds from both sides", SANDWICH_CAPTION, label, rows, levels, n)]
        rows, levels = _collect(group, split, _natural)
        if rows:
            rows["adversary beyond chance (points)"] = _margin(rows)
            parts["natural"] += ["", *_markdown("The adversary beside chance", NATURAL_CAPTION, label, rows, levels, n)]
    out: list[str] = []
    if parts["sandwich"]:
        out += ["## Certified lower and empirical upper bounds (eval=certified)", *parts["sandwich"], ""]
    if parts["natural"]:
        out += ["## Adversarial vs natural noise at equal SNR (eval=natural)", *parts["natural"], ""]
    return out


_STYLE = {  # row -> (marker, line style): lines that coincide stay visible
    "certified (smoothed, lower bound)": ("^", "-"),
    "PGD on the smoothed (upper bound)": ("v", "--"),
    "worst case on the base network": ("o", ":"),
    "strongest adversary": ("o", "-"),
}


def _panel(ax, rows: Rows, levels: list[float], title: str, shade: tuple[str, str] | None) -> None:
    """One group's curves against the SNR in dB (noise grows to the right), ±1 std clipped to [0, 100]; the clean
    accuracies are in the section's table."""
    for i, (row, cells) in enumerate(rows.items()):
        points = [(lv, cells[level_label(lv)]) for lv in levels if level_label(lv) in cells]
        points = [(lv, c) for lv, c in points if c.mean is not None]
        if not points:
            continue
        marker, style = _STYLE.get(row, ("xs+dP*"[i % 6], (0, (1, 1 + i % 3))))
        means = [min(100.0, max(0.0, c.mean)) for _, c in points]
        lows = [max(0.0, c.mean - (c.std or 0.0)) for _, c in points]
        highs = [min(100.0, c.mean + (c.std or 0.0)) for _, c in points]
        yerr = [[m - lo for m, lo in zip(means, lows)], [hi - m for m, hi in zip(means, highs)]]
        xs = [lv for lv, _ in points]
        ax.errorbar(xs, means, yerr=yerr, marker=marker, linestyle=style, capsize=3, markersize=5, label=row)
    if shade and all(s in rows for s in shade):
        low, high = (rows[s] for s in shade)
        both = [lv for lv in levels if level_label(lv) in low and level_label(lv) in high]
        both = [lv for lv in both if low[level_label(lv)].mean is not None and high[level_label(lv)].mean is not None]
        if both:
            ax.fill_between(
                both,
                [low[level_label(lv)].mean for lv in both],
                [high[level_label(lv)].mean for lv in both],
                alpha=0.15,
                color="gray",
                label="the truth lies here",
            )
    ax.set_xlim(max(levels) + 2, min(levels) - 2) if levels else None
    ax.set_xticks(levels)
    ax.set_xticklabels([f"{lv:g}" for lv in levels])
    ax.set_ylim(-2, 102)
    ax.set_xlabel("SNR in dB (noise grows to the right)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def write_figures(groups: list[Group], labels: list[str], out: Path, split: str = "test") -> list[Path]:
    """`bounds.png` (the sandwich) and `natural_vs_adversarial.png`, a panel per group that has the evaluation."""
    files = []
    for name, read, shade in (
        ("bounds", _sandwich, ("certified (smoothed, lower bound)", "PGD on the smoothed (upper bound)")),
        ("natural_vs_adversarial", _natural, None),
    ):
        panels = [(label, *_collect(group, split, read)) for group, label in zip(groups, labels)]
        panels = [p for p in panels if p[1]]
        if not panels:
            continue
        plt = pyplot()
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
        for ax, (label, rows, levels) in zip(axes[0], panels):
            _panel(ax, rows, levels, label, shade)
        fig.tight_layout()
        files.append(save_formats(fig, out / f"{name}.png"))
    return files
