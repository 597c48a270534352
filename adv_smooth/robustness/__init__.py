"""Robustness science: the per-batch evaluation, per-image records, curves and figures, honesty checks."""
