"""The report's minimal-SNR distributions.

`plot_min_snr` draws, for every minimum-norm attack in the per-image records, the distribution
of each image's minimal adversarial SNR per row (pooled over seeds, images correct clean): where the whole
curve comes from, and how much it spreads, which the accuracy at four levels hides. Images the attack
never broke (minimal SNR -inf) cannot be placed on the axis; their count is in the row's label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adv_smooth.reporting.paired import load_records
from adv_smooth.reporting.table import Group
from adv_smooth.utils.plotting import pyplot, save_formats


def min_snr_samples(group: Group, split: str = "test") -> dict[str, tuple[np.ndarray, int]]:
    """{attack: (finite minimal SNRs of the images correct clean, pooled over seeds; how many were never broken)}."""
    pooled: dict[str, list[np.ndarray]] = {}
    never: dict[str, int] = {}
    for job in group.jobs:
        records = load_records(job, split)
        if records is None:
            continue
        for name, rec in records.attacks.items():
            if rec.min_snr_db is None:
                continue
            values = rec.min_snr_db[records.clean].astype(np.float64)
            pooled.setdefault(name, []).append(values[np.isfinite(values)])
            never[name] = never.get(name, 0) + int(np.isneginf(values).sum())
    return {name: (np.concatenate(parts), never[name]) for name, parts in pooled.items()}


def plot_min_snr(groups: list[Group], labels: list[str], out: Path, split: str = "test") -> list[Path]:
    """One figure per minimum-norm attack: a violin of minimal SNR per row, median marked; [] when none."""
    samples = [min_snr_samples(g, split) for g in groups]
    attacks = sorted({a for s in samples for a in s})
    paths = []
    for attack in attacks:
        rows = [(label, s[attack]) for label, s in zip(labels, samples) if attack in s and s[attack][0].size]
        if not rows:
            continue
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7, 1.6 + 0.7 * len(rows)))
        positions = list(range(1, len(rows) + 1))
        ax.violinplot([v for _, (v, _) in rows], positions=positions, vert=False, showmedians=True)
        names = [f"{label}\n(n={v.size}, never broken: {k})" for label, (v, k) in rows]
        ax.set_yticks(positions, names, fontsize=7)
        ax.invert_xaxis()  # like the accuracy curves: noise grows to the right
        ax.set_xlabel("minimal adversarial SNR (dB); robust at s iff minimal SNR < s")
        ax.set_title(f"{attack}: minimal SNR of the {split} images correct clean (seeds pooled)", fontsize=10)
        ax.grid(alpha=0.3, axis="x")
        fig.tight_layout()
        paths.append(save_formats(fig, out / f"min_snr_{attack}.png"))
    return paths
