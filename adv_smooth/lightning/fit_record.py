"""What a run's record needs from the parts before a resume: their wall time and their last fit metrics.

A run killed and resumed with `resume=last` is one run in several parts. Lightning restores the
weights, optimizer and loops, but the resumed part alone knows neither how long the earlier parts took
nor, when the checkpoint was the final epoch's (killed while testing), any validation metric: its
`fit` block came out empty and its `wall_time_s` counted the last part only. `FitRecord` stores both
in every checkpoint and restores them on resume. The time a killed part spent after its last
checkpoint is not counted: that work was lost and is done again by the next part.
"""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.trainer.states import TrainerFn

KEY = "fit_record"


class FitRecord(Callback):
    """Wall time and fit metrics carried through checkpoints. `start`: when this part began (`time.time()`)."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.time() if start is None else start
        self.earlier_s: list[float] = []  # each earlier part's time, up to the checkpoint resumed from
        self.saved_fit: dict[str, float] = {}  # the fit metrics as that checkpoint was written

    def wall_time_s(self) -> float:
        """All parts together, this one until now."""
        return sum(self.earlier_s) + time.time() - self.start

    def parts_s(self) -> list[float]:
        return [*self.earlier_s, time.time() - self.start]

    def fit_metrics(self, current: dict[str, float]) -> dict[str, float]:
        """This part's fit metrics over the checkpoint's (a part that trained no epoch has only the latter)."""
        return {**self.saved_fit, **current}

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        checkpoint[KEY] = {"parts_s": self.parts_s(), "fit": {**self.saved_fit, **metrics}}

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn != TrainerFn.FITTING:  # testing the best checkpoint: the run's own record stays
            return
        saved = checkpoint.get(KEY) or {}
        self.earlier_s = [float(s) for s in saved.get("parts_s", [])]
        self.saved_fit = {str(k): float(v) for k, v in (saved.get("fit") or {}).items()}
