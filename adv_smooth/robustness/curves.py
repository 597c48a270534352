"""The numbers and the figure of one evaluated split, computed from its per-image `Records`.

Shared by the training callback (`lightning/robustness_callback.py`), checkpoint evaluation and benchmarks/:
`summarize` gives the JSON block of results.json (curves, worst case, minimal SNRs, honesty warnings),
`scalars` the logged names, `accuracy_vs_snr_figure` the accuracy-vs-SNR plot.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from adv_smooth.attacks.base import Attack
from adv_smooth.robustness.honesty import Traits, check_records, level_key
from adv_smooth.robustness.records import Records
from adv_smooth.utils.io import write_bytes_atomic
from adv_smooth.utils.plotting import line_style, pyplot, snr_ticks

MIN_SNR_GRID = 0.5  # dB between the points of the minimal-SNR curve stored in results.json


def summarize(
    records: Records, attacks: Mapping[str, Attack], levels: Sequence[float], worst: bool = True
) -> dict[str, Any]:
    """The JSON summary of one split's records: per attack its curve, worst case, minimal SNRs, warnings."""
    clean_acc = float(records.clean.mean()) if records.n else 0.0
    summary: dict[str, Any] = {"n": records.n, "clean_acc": clean_acc, "cascade": records.cascade, "attacks": {}}
    if records.split_size is not None:  # eval.test_subset: `n` of the split's images (the records' index says which)
        summary["subset"] = {"n": records.n, "of": records.split_size, "seed": records.subset_seed}
    traits = {name: Traits.of(attack) for name, attack in attacks.items()}
    for name, attack in attacks.items():
        rec = records.attacks[name]
        acc = records.accuracy(name)
        entry: dict[str, Any] = {
            "levels": rec.levels,
            "describe": attack.describe(),
            "traits": asdict(traits[name]),
            "acc": {level_key(lv): v for lv, v in acc.items()},
            "cumulative_acc": {level_key(lv): v for lv, v in zip(rec.levels, _cumulative(records, name))},
            "measured_snr_db": {level_key(lv): _nanmean(rec.measured_snr_db[i]) for i, lv in enumerate(rec.levels)},
        }
        if records.cascade:
            entry["cascade"] = _cascade_entry(records, name)
        if rec.min_snr_db is not None:
            grid = _grid(levels)
            entry["min_snr"] = {
                "median_db": records.median_min_snr(name),
                "curve": {f"{s:g}": v for s, v in records.minimal_curve(name, grid).items()},
            }
        summary["attacks"][name] = entry
    if worst:
        summary["worst"] = {"acc": {level_key(lv): v for lv, v in records.worst().items()}}
    summary["honesty"] = check_records(records, traits) if records.n else []
    return summary


def scalars(summary: dict[str, Any], stage: str) -> dict[str, float]:
    """The logged scalars: `test/<attack>/snr33/acc` (and cumulative, measured SNR), `test/worst/snr33/acc`."""
    out: dict[str, float] = {}
    for name, entry in summary["attacks"].items():
        for key, v in entry["acc"].items():
            out[f"{stage}/{name}/{key}/acc"] = v
            out[f"{stage}/{name}/{key}/cumulative_acc"] = entry["cumulative_acc"][key]
            out[f"{stage}/{name}/{key}/measured_snr_db"] = entry["measured_snr_db"][key]
        if "min_snr" in entry and math.isfinite(entry["min_snr"]["median_db"]):
            out[f"{stage}/{name}/median_min_snr_db"] = entry["min_snr"]["median_db"]
    for key, v in summary.get("worst", {}).get("acc", {}).items():
        out[f"{stage}/worst/{key}/acc"] = v
    return out


def _cumulative(records: Records, name: str) -> list[float]:
    """Correct clean and robust at this and every weaker level (the same image throughout; in a cascade, also
    against every earlier attack, as `Records.correct` reads it)."""
    running = records.clean.copy()
    out = []
    for mask in records.correct(name).values():  # the attack's levels, weak to strong
        running &= mask
        out.append(float(running.mean()) if records.n else 0.0)
    return out


def _cascade_entry(records: Records, name: str) -> dict[str, Any]:
    """What a cascade row is: the attacks before it (its accuracy counts their breaks too) and, per level, how
    many images it actually attacked (the ones still robust when its turn came)."""
    rec = records.attacks[name]
    return {
        "after": records.cascade_before(name),
        "attacked": {level_key(lv): int((rec.adv_correct[i] != -1).sum()) for i, lv in enumerate(rec.levels)},
    }


def _grid(levels: Sequence[float]) -> list[float]:
    """SNRs every MIN_SNR_GRID dB from 10 dB below the strongest level to 10 dB above the weakest."""
    lo, hi = math.floor(min(levels)) - 10, math.ceil(max(levels)) + 10
    return [lo + MIN_SNR_GRID * i for i in range(int((hi - lo) / MIN_SNR_GRID) + 1)]


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def save_figure(fig: Any, path: Path) -> Path:
    """PNG written atomically, then the figure closed (matplotlib keeps open figures alive)."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return write_bytes_atomic(path, buffer.getvalue())


def accuracy_vs_snr_figure(summary: Mapping[str, Any]):
    """Accuracy (%) vs SNR (dB, decreasing to the right = more noise), one curve per attack, worst, minimal SNR.

    Each attack has its own marker and dash (`utils/plotting.line_style`) and the per-image worst case is a wide
    grey band under them, so an attack that is the worst case stays visible on it. Ticks sit at the evaluated
    levels; a single level gets a few dB either side (`utils/plotting.snr_ticks`).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    levels: list[float] = []
    free_axis = False  # a minimal-SNR curve spans its own grid: ticks at integers, not at the levels
    for index, (name, entry) in enumerate(summary["attacks"].items()):
        style = line_style(index)
        if "min_snr" in entry:  # its own curve at any resolution stands for its per-level points
            curve = sorted((float(s), v) for s, v in entry["min_snr"]["curve"].items())  # JSON may sort keys as text
            ax.plot(
                [s for s, _ in curve],
                [100 * v for _, v in curve],
                linestyle=":",
                label=f"{name} (minimal SNR)",
                zorder=3,
            )
            free_axis = True
            continue
        points = [(lv, entry["acc"][level_key(lv)]) for lv in entry["levels"] if lv is not None]
        levels += [p[0] for p in points]
        if points:
            ax.plot([p[0] for p in points], [100 * p[1] for p in points], label=name, zorder=3, **style)
    if "worst" in summary:
        points = [(float(k[3:]), v) for k, v in summary["worst"]["acc"].items() if k.startswith("snr")]
        levels += [p[0] for p in points]
        ax.plot(
            [p[0] for p in points],
            [100 * p[1] for p in points],
            color="black",
            alpha=0.2,
            linewidth=7,
            marker="o",
            markersize=13,  # a single level is a point, which a line alone would not draw
            solid_capstyle="round",
            label="worst (per image)",
            zorder=2,
        )
    certified = summary.get("certified") or {}  # eval=certified: the smoothed classifier's bounds
    for key, label, marker in (("acc", "certified (smoothed)", "^"), ("empirical_acc", "PGD on the smoothed", "v")):
        points = sorted((float(k[3:]), v) for k, v in certified.get(key, {}).items())
        if points:
            levels += [p[0] for p in points]
            ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker=marker, linestyle="-.", label=label)
    ax.axhline(100 * summary["clean_acc"], color="grey", linestyle="--", label="clean", zorder=1)
    ys = [y for line in ax.get_lines() for y in line.get_ydata()]
    ax.set_ylim(max(0.0, min(ys) - 5), min(101.0, max(ys) + 5))  # a margin, never beyond [0, 100]
    for line in ax.get_lines():  # a marker at 0 or 100 % is drawn whole over the frame, not cut in half by it
        line.set_clip_on(False)
    ax.invert_xaxis()
    if free_axis:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        snr_ticks(ax, levels)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("accuracy (%)")
    cascade = ", cascade: each curve counts the attacks before it" if summary.get("cascade") else ""
    ax.set_title(f"n = {summary['n']} images{cascade}", fontsize="medium")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
