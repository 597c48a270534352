"""matplotlib's pyplot on the Agg backend (no display needed), imported on first use: one helper for every figure."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """`matplotlib.pyplot` with the Agg backend selected (figures are written to files, never shown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


MARKERS = ("o", "^", "v", "D", "P", "X", "<", ">", "*", "h")
DASHES = ("-", "--", "-.", ":")


def line_style(index: int) -> dict[str, Any]:
    """The `index`-th series' marker and dash, every pair distinct for the first 20: two series that coincide
    (an attack that is the worst case, two groups with equal accuracy) stay told apart."""
    return {"marker": MARKERS[index % len(MARKERS)], "linestyle": DASHES[index % len(DASHES)]}


def snr_ticks(ax: Any, levels: list[float], pad: float = 3.0) -> None:
    """Ticks at the SNR levels (dB, integers shown as such) and, when they span less than `2 * pad` dB (one level,
    say), limits `pad` dB either side: not a lone dot on a 21 -> 19 dB axis of fractional ticks. The axis keeps its
    direction (inverted: noise grows to the right)."""
    if not levels:
        return
    ax.set_xticks(sorted(set(levels)), [f"{lv:g}" for lv in sorted(set(levels))])
    lo, hi = min(levels), max(levels)
    if hi - lo < 2 * pad:
        left, right = ax.get_xlim()
        inverted = left > right
        lo, hi = min(lo, (lo + hi) / 2 - pad), max(hi, (lo + hi) / 2 + pad)
        ax.set_xlim((hi, lo) if inverted else (lo, hi))
