"""What several processes (DDP) need beyond Lightning: gathering objects, and results that survive `ddp_spawn`.

* `gather_objects`: every process's object, in rank order (per-image records of different lengths: each process
  evaluated its own shard of the split).
* `carry_back`: under a spawning strategy (`ddp_spawn`, `ddp_fork`) `fit` and `test` run in child processes and
  Lightning brings back only the weights, the best checkpoint's path and the logged scalars; the callbacks of
  the main process never saw an epoch. `carry_back` makes rank 0 also send every callback's state (its
  `spawn_state()`, else its checkpoint `state_dict()`) and the fit loop's counters, which the main process
  loads, so the entry points read the robustness results, the best epoch and the epoch count as after a
  single-process run.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from pytorch_lightning.trainer.states import TrainerFn


def gather_objects(trainer: pl.Trainer, obj: Any) -> list[Any]:
    """`[obj of rank 0, obj of rank 1, ...]` (a one-element list on a single process); a collective call."""
    if trainer.world_size == 1 or not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * trainer.world_size
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def _callback_states(trainer: pl.Trainer) -> bytes:
    """Pickled to bytes, as Lightning sends its scalars: tensors in a queue would travel as shared memory."""
    return pickle.dumps([getattr(cb, "spawn_state", cb.state_dict)() for cb in trainer.callbacks])


def _load_callback_states(trainer: pl.Trainer, states: bytes | None) -> None:
    loaded = pickle.loads(states) if states else []  # from this run's own rank-0 child
    if len(loaded) != len(trainer.callbacks):  # the callback list changed in the child: nothing matches safely
        return
    for callback, state in zip(trainer.callbacks, loaded):
        if state:
            getattr(callback, "load_spawn_state", callback.load_state_dict)(state)


class CarryBack(_MultiProcessingLauncher):
    """Lightning's spawning launcher, plus the callbacks' states in the results rank 0 sends back.

    `get_extra_results` / `update_main_process_results` are the hooks Lightning documents for extra state.
    """

    def get_extra_results(self, trainer: pl.Trainer) -> dict[str, Any]:
        extra = {**super().get_extra_results(trainer), "adv_smooth_callbacks": _callback_states(trainer)}
        if trainer.state.fn == TrainerFn.FITTING:  # the epoch and step counters (`trainer.current_epoch`)
            extra["adv_smooth_fit_loop"] = pickle.dumps(trainer.fit_loop.state_dict())
        return extra

    def update_main_process_results(self, trainer: pl.Trainer, extra: dict[str, Any]) -> None:
        super().update_main_process_results(trainer, extra)
        _load_callback_states(trainer, extra.get("adv_smooth_callbacks"))
        if "adv_smooth_fit_loop" in extra:
            trainer.fit_loop.load_state_dict(pickle.loads(extra["adv_smooth_fit_loop"]))
            trainer.fit_loop.restarting = False  # counters only: nothing here resumes


def carry_back(trainer: pl.Trainer) -> None:
    """Make a spawning strategy bring the callbacks' states back to this process (a no-op otherwise)."""
    launcher = getattr(trainer.strategy, "launcher", None)
    if type(launcher) is _MultiProcessingLauncher:  # the launcher class is private: touch nothing else
        launcher.__class__ = CarryBack
