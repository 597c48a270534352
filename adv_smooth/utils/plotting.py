"""matplotlib's pyplot on the Agg backend (no display needed), imported on first use: one helper for every figure."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """`matplotlib.pyplot` with the Agg backend selected (figures are written to files, never shown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
