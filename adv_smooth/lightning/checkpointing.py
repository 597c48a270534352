"""Checkpoint files that are always whole and a `last.ckpt` that is always the latest.

`AtomicCheckpointIO` writes each checkpoint to a temporary file in the same directory, fsyncs it and
renames it over the final name, so a full disk or a kill mid-write leaves the previous file (or none),
never a truncated file under a finished-looking name; a failed write is reported as one `OSError`
naming the file.

Lightning's `ModelCheckpoint` refreshes `last.ckpt` only when it saved a top-k checkpoint at the same
step, so with `save_top_k=1` an epoch that does not improve validation accuracy leaves `last.ckpt`
behind, and a killed run resumes from an older epoch. This subclass saves `last.ckpt` whenever a save
was due, improvement or not, and remembers the epoch of every file it wrote (`saved_epochs`, kept in
its checkpointed state), so a summary can say which epoch the best checkpoint is.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint as _ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

from adv_smooth.utils.io import STAGING, current_umask


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, no permission); the previous file is intact."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` into a temporary file, fsync, then rename: readers only ever see whole checkpoints."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's own writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, path)
        except BaseException as e:
            Path(tmp).unlink(missing_ok=True)
            failure = _write_failure(e)
            if failure is not None:
                detail = " ".join(str(failure).split()) or type(failure).__name__
                raise CheckpointWriteError(
                    f"could not write checkpoint {path} ({type(failure).__name__}: {detail}; {_free(path.parent)} "
                    "there): the previous checkpoint is intact"
                ) from e
            raise


def _write_failure(e: BaseException) -> BaseException | None:
    """What the file system refused (full disk, quota, permissions), None for anything else.

    torch reports some refusals as a RuntimeError of its own: "file write failed", or, on a full disk, "[enforce
    fail at inline_container.cc] unexpected pos" raised while handling the `OSError` of the write itself. The
    `OSError` in the chain names the cause ("No space left on device"), so it is the one reported.
    """
    seen: set[int] = set()
    cause: BaseException | None = e
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return e if isinstance(e, RuntimeError) and "writ" in str(e).lower() else None


def _free(directory: Path) -> str:
    try:
        return f"{shutil.disk_usage(directory).free // 2**20} MiB free"
    except OSError:
        return "free space unknown"


AUTO = "auto"
CLEAN, ROBUST = "val/acc", "val/robust_acc"  # the robustness callback logs ROBUST where its probe ran


class ModelCheckpoint(_ModelCheckpoint):
    """Lightning's `ModelCheckpoint`, except that `last.ckpt` follows every scheduled save, and `monitor="auto"`
    chooses the best checkpoint on robust validation accuracy (`val/robust_acc`, the validation probe's worst case
    at its strongest level) when the defense trains on adversarial examples and on clean `val/acc` otherwise: an
    adversarially trained network overfits robustly (its robust accuracy peaks early, then falls while its clean
    accuracy rises; Rice, Wong & Kolter 2020), and the field keeps the best robust checkpoint. An epoch whose
    validation did not run the probe (`eval.val_every_n_epochs`) is not a candidate; last.ckpt still follows it.
    Without a probe (`eval.val_subset=0`) the choice is clean accuracy.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_saved_at: int | None = None  # global step of the newest last.ckpt
        self.saved_epochs: dict[str, int] = {}  # file -> the (0-based) epoch its weights are from

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and empty_validation_split(trainer):
            # dataset.val_fraction=0: no validation loop (Lightning would warn that its loader is empty) and no
            # metric to choose on: the latest checkpoint is kept (eval.checkpoint must then be last)
            trainer.limit_val_batches = 0
            self.monitor = None
            if self.filename and "{val/" in self.filename:  # epoch001-val_acc0.0000: a metric never measured
                self.filename = re.sub(r"[-_]?[\w]*\{val/[^}]*\}", "", self.filename) or "{epoch:03d}"
        if self.monitor == AUTO:
            defense = getattr(pl_module, "defense", None)
            probed = any(getattr(c, "val_subset", 0) != 0 for c in trainer.callbacks)  # a robustness probe may run
            self.monitor = ROBUST if getattr(defense, "trains_adversarially", False) and probed else CLEAN
        super().setup(trainer, pl_module, stage)

    def format_checkpoint_name(self, metrics: dict[str, Any], filename: str | None = None, **kwargs: Any) -> str:
        """Lightning's name, with epochs counted from 1 as the console counts them (`epoch004-...` holds the
        weights after the 4th epoch, the summary's "epoch 4"); `saved_epochs` and results.json's `best_epoch`
        stay 0-based, as Lightning's `current_epoch`."""
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": metrics["epoch"] + 1}
        return super().format_checkpoint_name(metrics, filename, **kwargs)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "saved_epochs": dict(self.saved_epochs)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = moved_in(state_dict, self.dirpath)
        super().load_state_dict(state_dict)
        self.saved_epochs.update(state_dict.get("saved_epochs", {}))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        self.saved_epochs[str(filepath)] = trainer.current_epoch  # first: the file's own state includes it
        super()._save_checkpoint(trainer, filepath)

    def _remove_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._remove_checkpoint(trainer, filepath)
        self.saved_epochs.pop(str(filepath), None)

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if self.monitor != ROBUST or ROBUST in monitor_candidates:  # no probe this epoch: not a candidate
            super()._save_topk_checkpoint(trainer, monitor_candidates)
        if self.save_last:  # whether or not top-k kept this step, last.ckpt now holds it
            self._save_last_checkpoint(trainer, monitor_candidates)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if self._last_saved_at == trainer.global_step and self.last_model_path:
            return  # already written at this step (Lightning asks again after the top-k save)
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_saved_at = trainer.global_step


def empty_validation_split(trainer: pl.Trainer) -> bool:
    """The trainer's data module was set up with a validation split of no image (`dataset.val_fraction=0`)."""
    val_set = getattr(trainer.datamodule, "val_set", None)
    try:
        return val_set is not None and len(val_set) == 0
    except TypeError:  # a split without a length: not known to be empty
        return False


def moved_in(state: dict[str, Any], dirpath: str | None) -> dict[str, Any]:
    """`state` with the paths of a checkpoint written in a run dir's staging dir (`<run>/.incoming/checkpoints`,
    while it replaced a completed run) renamed to where its run's set was moved in (`<run>/checkpoints`).

    Lightning keeps a checkpoint callback's best score and files only when the saved `dirpath` is its own, and
    warns otherwise: the resume of such a run would lose its best checkpoint."""
    saved = state.get("dirpath")
    if not saved or not dirpath or saved == dirpath or STAGING not in Path(saved).parts:
        return state
    parts = Path(saved).parts
    at = parts.index(STAGING)
    if str(Path(*parts[:at], *parts[at + 1 :])) != str(dirpath):
        return state

    def rename(value: Any) -> Any:
        if isinstance(value, str):
            return dirpath + value[len(saved) :] if value.startswith(saved) else value
        if isinstance(value, dict):
            return {rename(k): rename(v) for k, v in value.items()}
        return value

    return {key: rename(value) for key, value in state.items()}
