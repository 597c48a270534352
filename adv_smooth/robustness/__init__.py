"""Robustness science: the evaluation engine (`Evaluator`; `adv_smooth.evaluate_model` runs it with an `eval`
preset), the per-batch evaluation, per-image records, curves and figures, honesty checks."""

_LAZY = {
    "Evaluator": "adv_smooth.robustness.evaluator",
    "Records": "adv_smooth.robustness.records",
}


def __getattr__(name: str):
    """The public names, imported on first use (the records' readers need no torch)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'adv_smooth.robustness' has no attribute {name!r}")
