"""Robustness science: the evaluation engine (`Evaluator`, `evaluate_model`), the per-batch evaluation, per-image
records, curves and figures, honesty checks."""

_LAZY = {
    "Evaluator": "adv_smooth.robustness.evaluator",
    "evaluate_model": "adv_smooth.robustness.model_evaluation",
    "ModelEvaluation": "adv_smooth.robustness.model_evaluation",
    "Records": "adv_smooth.robustness.records",
}


def __getattr__(name: str):
    """The public names, imported on first use (the records' readers need no torch)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'adv_smooth.robustness' has no attribute {name!r}")
