"""Results shared by the training and evaluation tasks: the scalars Lightning logged, the callbacks' blocks."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


def scalar_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The scalars Lightning logged last (e.g. `test/acc`, `test/fgsm/snr33/acc`)."""
    return {key: float(value) for key, value in trainer.callback_metrics.items()}


def callback_results(trainer: pl.Trainer) -> dict[str, Any]:
    """Structured results callbacks expose through `results()` (robustness curves, honesty checks)."""
    results: dict[str, Any] = {}
    for callback in trainer.callbacks:
        if hasattr(callback, "results"):
            results.update(callback.results())
    return results


def best_val_acc(trainer: pl.Trainer) -> float | None:
    """The validation accuracy of the best checkpoint (restored on resume), None when nothing chose one on it."""
    callback = trainer.checkpoint_callback
    score = getattr(callback, "best_model_score", None)
    if score is None or getattr(callback, "monitor", None) != "val/acc":
        return None
    return float(score)


def selection(trainer: pl.Trainer) -> dict[str, Any]:
    """Which validation metric chose the best checkpoint, and its score there (`selected_on`, `best_score`); {} when
    no checkpoint callback monitors one."""
    callback = trainer.checkpoint_callback
    monitor = getattr(callback, "monitor", None)
    if not monitor:
        return {}
    score = getattr(callback, "best_model_score", None)
    return {"selected_on": str(monitor), "best_score": None if score is None else float(score)}
