"""Results shared by the training and evaluation tasks: the scalars Lightning logged, the callbacks' blocks."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from adv_smooth.run_record import Member, fields_of


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


def evaluation_results(
    trainer: pl.Trainer, info: dict[str, Any], members: list[tuple[str, pl.Trainer]]
) -> tuple[dict[str, Any], list[Member]]:
    """An evaluation's numbers as the run record takes them: `trainer`'s (the evaluated network's) scalars and
    blocks typed beside `info`, and one `Member` per (checkpoint path, Trainer) of an ensemble. Read here in one
    call, so that the results are gathered first and typed after, each module left once."""
    metrics = [scalar_metrics(t) for t in (trainer, *(t for _, t in members))]
    blocks = [callback_results(t) for t in (trainer, *(t for _, t in members))]
    fields = dict(metrics=metrics[0], **fields_of({**info, **blocks[0]}))  # a block's `metrics` would clash
    records = [
        Member(ckpt_path=path, metrics=metrics[i + 1], **fields_of(blocks[i + 1], Member, f"member {i}'s results"))
        for i, (path, _) in enumerate(members)
    ]
    return fields, records
