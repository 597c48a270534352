"""`Snapshots`: a checkpoint at the end of every learning-rate cycle (Huang et al. 2017, "Snapshot Ensembles").

With `optim/schedule=snapshot` the learning rate anneals to about zero `cycles` times (`CosineRestarts`); the
weights at each cycle's end sit in a different minimum, and averaging their softmax outputs is an ensemble
"for free": one training run, M members. This callback saves those weights as
`checkpoints/snapshot<k>.ckpt` (k = 1..M, whole Lightning checkpoints written through the trainer's atomic
checkpoint writer), and lists them in results.json; `python -m adv_smooth.evaluate ckpt=[...]`
evaluates them as one model.

Why a callback of its own rather than `ModelCheckpoint(every_n_epochs=...)`: the project's ModelCheckpoint
keeps the best epoch and last.ckpt, and a snapshot is neither; the cycle ends are a property of the schedule,
so the cycle count is checked against the epochs here, before any data is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from adv_smooth.utils.errors import is_int, require


class Snapshots(pl.Callback):
    """Save `snapshot<k>.ckpt` at the end of each of `cycles` equal cycles of `epochs` epochs.

    Args:
        cycles: how many snapshots (learning-rate cycles) the run takes.
        epochs: the run's epochs (`trainer.max_epochs`, a multiple of `cycles`).
        dirpath: the folder the snapshot checkpoints are written to.
    """

    def __init__(self, cycles: int, epochs: int, dirpath: str | None = None) -> None:
        require(is_int(cycles) and cycles >= 1, "cycles", cycles, "an integer >= 1")
        require(is_int(epochs) and epochs >= 1, "epochs", epochs, "an integer >= 1 with snapshot cycles")
        require(
            epochs % cycles == 0,
            "cycles",
            cycles,
            f"a divisor of epochs={epochs} (each snapshot closes a whole number of epochs)",
        )
        self.cycles = cycles
        self.epochs = epochs
        self.dirpath = dirpath
        self.saved: dict[int, dict[str, Any]] = {}  # cycle k -> {"path", "epoch", "next_lr"}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        require(
            trainer.max_epochs == self.epochs,
            "max_epochs",
            trainer.max_epochs,
            f"{self.epochs}, the epochs the snapshot cycles were sized for",
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        per_cycle = self.epochs // self.cycles
        done = trainer.current_epoch + 1
        if done % per_cycle:
            return
        cycle = done // per_cycle
        directory = Path(self.dirpath) if self.dirpath else Path(trainer.default_root_dir) / "checkpoints"
        path = directory / f"snapshot{cycle}.ckpt"
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        self.saved[cycle] = {"path": str(path), "epoch": trainer.current_epoch, "next_lr": lr}
        trainer.save_checkpoint(path, weights_only=False)

    def state_dict(self) -> dict[str, Any]:
        return {"saved": {str(k): v for k, v in self.saved.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.saved.update({int(k): v for k, v in state_dict.get("saved", {}).items()})

    def results(self) -> dict[str, Any]:
        """Merged into results.json: the snapshot files in cycle order and the command that ensembles them."""
        paths = [self.saved[k]["path"] for k in sorted(self.saved)]
        return {
            "snapshots": {
                "cycles": self.cycles,
                "files": paths,
                "epochs": [self.saved[k]["epoch"] for k in sorted(self.saved)],
                "evaluate": f"python -m adv_smooth.evaluate 'ckpt=[{','.join(paths)}]'",
            }
        }
