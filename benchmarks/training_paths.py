"""The two training paths the benchmarks compare: a hand-written PyTorch loop and `trainer.fit`, over the same batches.

Both call the project's one loss (`adv_smooth.defenses.objective.training_objective`), so a difference in time
is Lightning plus the module's bookkeeping, never a different computation.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from adv_smooth.defenses import TrainBatch
from adv_smooth.defenses.objective import training_objective
from benchmarks._setup import autocast, make_trainer
from benchmarks._timing import Clock, StepWindow, timed


def plain_step(net: nn.Module, defense: Any, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, amp) -> Tensor:
    """One training step by hand: the module's `training_objective`, then backward and step."""
    with amp:
        loss = training_objective(net, defense, TrainBatch.clean(x, y)).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    defense.after_optimizer_step(net)
    return loss.detach()


def plain_fit(
    module: Any,
    batches: Sequence[tuple[Tensor, Tensor]],
    warmup: int,
    device: str,
    precision: str,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Train `module.net` over `batches` with a hand loop; clock the steps from `warmup` on."""
    net, defense = module.net, module.defense
    optimizer = module.optimizer_factory(params=module.parameters())
    module.train()
    defense.setup(module, None)  # what on_fit_start does (no datamodule here either)
    amp = autocast(device, precision)
    clock = Clock(device)
    loss = None
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            clock.start()
            if on_start:
                on_start()
        loss = plain_step(net, defense, optimizer, x, y, amp)
    last = float(loss)  # one read at the end, as the Lightning path
    clock.stop()
    return {"wall": clock.wall, "cpu": clock.cpu, "last_loss": last}


def lightning_fit(
    module: Any,
    batches: Sequence[tuple[Tensor, Tensor]],
    warmup: int,
    device: str,
    precision: str,
    logger: str,
    log_every_n_steps: int,
    on_start: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """`trainer.fit(module)` over `batches` (one epoch); the window starts at batch `warmup`."""
    window = StepWindow(warmup, device, on_start=on_start, on_stop=on_stop)
    with tempfile.TemporaryDirectory(prefix="bench-") as root:
        trainer = make_trainer(device, precision, [window], logger, log_every_n_steps, Path(root))
        total, _ = timed(lambda: trainer.fit(module, train_dataloaders=batches), device)
    return {
        "wall": window.clock.wall,
        "cpu": window.clock.cpu,
        "last_loss": window.last_loss,
        "fit_total_s": total,
        "epoch_end_s": window.epoch_end.wall,
    }
