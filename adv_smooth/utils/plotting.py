"""matplotlib's pyplot on the Agg backend (no display needed), imported on first use, and figure files for
publication (PNG for a screen, PDF as vector for a paper): one set of helpers for every figure.

`save_formats` writes both formats atomically, so a report never leaves a half-written figure under the final name.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from adv_smooth.utils.io import write_bytes_atomic


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


FORMATS = ("png", "pdf")


def save_formats(fig, path: Path) -> Path:
    """`path` (PNG) and the same figure as PDF beside it, written atomically; closes the figure. Returns `path`."""
    plt = pyplot()
    for fmt in FORMATS:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=120)
        write_bytes_atomic(path.with_suffix(f".{fmt}"), buffer.getvalue())
    plt.close(fig)
    return path


def companions(paths: list[Path]) -> list[Path]:
    """Each PNG with its PDF twin, when it was written."""
    out: list[Path] = []
    for path in paths:
        out.append(path)
        pdf = path.with_suffix(".pdf")
        if path.suffix == ".png" and pdf.is_file():
            out.append(pdf)
    return out
