"""SIGTERM / SIGUSR1 (what SLURM and most schedulers send before preempting a job): stop safely, resumably.

Left alone, Lightning turns SIGTERM into a `SystemExit` with status 0 (a preempted job looks like a
success) and saves nothing. While training or testing, this callback's handler only notes the signal;
at the next safe point (the end of the current training batch, or the end of the epoch when the signal
came during validation) it saves `last.ckpt`, then raises `Preempted`. The entry point writes a
results.json with status "interrupted" and exits with 128 + the signal number (143 for SIGTERM, 138 for
SIGUSR1), and `resume=last` resumes the run. The previous handlers are restored when training or
testing ends, so outside those stages the signals keep their usual meaning.

The handler replaces Lightning's own (installed just before `on_train_start`): Lightning's would also
abort validation midway, where no resumable checkpoint can be taken.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
    """Training or testing stopped on a signal; `checkpoint` (when saved) resumes it."""

    def __init__(self, signum: int, checkpoint: str | None, epochs_done: int, global_step: int) -> None:
        self.signum, self.checkpoint = signum, checkpoint
        self.epochs_done, self.global_step = epochs_done, global_step
        name = signal.Signals(signum).name
        where = f"saved {checkpoint}" if checkpoint else "training had ended, nothing to save"
        super().__init__(
            f"interrupted by {name} at step {global_step} ({epochs_done} epochs done): {where}; resume with resume=last"
        )

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class Preemption(pl.Callback):
    """Save `last.ckpt` and stop at the next safe point after SIGTERM or SIGUSR1."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    # -- handlers -----------------------------------------------------------------------------------
    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = self.received or signum

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._note)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore()

    # -- safe points ----------------------------------------------------------------------------------
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        self._stop_if_signalled(trainer)  # signalled during validation or while the batch was being loaded

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._stop_if_signalled(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        signalled = self._signalled(trainer)
        self._restore()
        if signalled:  # during the last epoch's validation: its epoch-end checkpoint is the last one
            raise Preempted(signalled, _last_path(trainer), trainer.current_epoch, trainer.global_step)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        signalled = self._signalled(trainer)
        if signalled:
            raise Preempted(signalled, None, trainer.current_epoch, trainer.global_step)

    def _signalled(self, trainer: pl.Trainer) -> int | None:
        """The signal to stop on; with several processes (DDP), all stop together when any one got it."""
        if trainer.world_size > 1 and trainer.strategy.reduce_boolean_decision(bool(self.received), all=False):
            return self.received or signal.SIGTERM
        return self.received

    def _stop_if_signalled(self, trainer: pl.Trainer) -> None:
        signalled = self._signalled(trainer)
        if not signalled:
            return
        path = _last_path(trainer)
        ckpt = trainer.checkpoint_callback
        saved_now = ckpt is not None and getattr(ckpt, "_last_global_step_saved", None) == trainer.global_step
        if path is not None and not (saved_now and Path(path).is_file()):
            trainer.save_checkpoint(path)  # a collective call under DDP: every process is here
        raise Preempted(signalled, path, trainer.current_epoch, trainer.global_step)


def _last_path(trainer: pl.Trainer) -> str | None:
    """Where the checkpoint callback keeps `last.ckpt` (None without one: nothing to resume from)."""
    ckpt = trainer.checkpoint_callback
    dirpath = getattr(ckpt, "dirpath", None)
    if not dirpath:
        return None
    name = getattr(ckpt, "CHECKPOINT_NAME_LAST", "last") or "last"
    return str(Path(dirpath) / f"{name}{getattr(ckpt, 'FILE_EXTENSION', '.ckpt')}")


class EvaluationStopped(Preempted):
    """An evaluation stopped on a signal. It has no safe point to wait for: nothing of it is kept (its results
    are written only at its end), so the same command simply runs it again."""

    def __init__(self, signum: int) -> None:
        Exception.__init__(
            self,
            f"evaluation interrupted by {signal.Signals(signum).name}: no results were written; "
            "run the same command again",
        )
        self.signum, self.checkpoint, self.epochs_done, self.global_step = signum, None, 0, 0


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT, *SIGNALS[1:])) -> Iterator[None]:
    """Inside the block, SIGTERM, SIGINT and SIGUSR1 raise `EvaluationStopped` at once.

    For a task with nothing to save midway (evaluation): left alone, Lightning notes SIGTERM ("Received SIGTERM")
    and tests on, and turns Ctrl-C into exit status 1. Lightning's own SIGTERM handler, installed as `test`
    starts, calls this one after its note. The previous handlers come back when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise EvaluationStopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
