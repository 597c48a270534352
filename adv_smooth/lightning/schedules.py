"""Learning-rate schedules, with the original code's optimizer reset as an option.

Both original repositories (the report's svhn.py / tiny_imageNet200.py, LPN's cifar10.py) trained in
periods and built a new optimizer at the start of each one, `optim.SGD(net.parameters(), lr=...)`: the
learning rate dropped and the momentum buffers (Adam: both moment estimates and the step count) restarted
from zero. A plain `MultiStepLR` keeps them. `reset_state=True` clears the optimizer's state at every
milestone, which is what re-creating the optimizer does, so a run reproduces the original step for step
without a new optimizer object (Lightning keeps one for the whole fit, and checkpoints it).

Milestones are epochs (integers, as torch's) or fractions of the run (floats in (0, 1], as Lightning's
`limit_*_batches`): `[0.6]` drops the learning rate after 60 % of `trainer.max_epochs`, so a shortened or
lengthened run keeps its shape, where an absolute `[5]` silently stops fitting a 2- or 15-epoch run. The
study's presets keep their epochs; the default `optim=sgd` / `optim=adam` use fractions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from adv_smooth.utils.errors import is_int, require

MILESTONES_ALLOWED = (
    "a strictly increasing list of epochs (integers >= 0) or of fractions of `max_epochs` "
    "(numbers in (0, 1), e.g. [0.6]), not both"
)


def valid_milestones(value: object) -> bool:
    """All epochs or all fractions (a mix has no order to check), strictly increasing; [] = never drop."""
    if not isinstance(value, (list, tuple)):
        return False
    epochs = all(is_int(v) and v >= 0 for v in value)
    fractions = all(isinstance(v, float) and 0 < v < 1 for v in value)
    return (epochs or fractions) and all(a < b for a, b in zip(value, value[1:]))


def resolve_milestones(milestones: Sequence[int | float], max_epochs: int | None = None) -> list[int]:
    """The epochs after which the learning rate drops: epochs stay as given; a fraction f becomes round(f * max_epochs)
    (halves up) kept within [1, max_epochs - 1], so any run of two epochs or more trains some epochs at the initial
    rate and some after the drop (a one-epoch run has no room for one)."""
    values = list(milestones)
    require(valid_milestones(values), "milestones", values, MILESTONES_ALLOWED)
    if all(is_int(v) for v in values):
        return values
    require(
        is_int(max_epochs) and max_epochs >= 1,
        "max_epochs",
        max_epochs,
        f"an integer >= 1 (milestones={values} are fractions of it)",
    )
    return [max(1, min(max_epochs - 1, math.floor(f * max_epochs + 0.5))) for f in values]


def unreached_milestones(milestones: Sequence[int | float], max_epochs: int) -> str | None:
    """One warning line when an epoch milestone lies at or after the last epoch (that drop never happens), else
    None. Fractions follow the run, so they are never late."""
    values = list(milestones)
    resolve_milestones(values, max_epochs)  # refuses what no run could use
    late = [m for m in values if is_int(m) and m >= max_epochs]
    if not late:
        return None
    return (
        f"warning: optim.milestones={values}: the learning rate would drop after "
        f"{', '.join(map(str, late))} epochs, but trainer.max_epochs={max_epochs}, so it never does; give fewer "
        "epochs or fractions of the run (e.g. optim.milestones=[0.6])"
    )


class MultiStepLR(torch.optim.lr_scheduler.MultiStepLR):
    """`torch.optim.lr_scheduler.MultiStepLR`, plus `reset_state` (forget the optimizer state at each milestone)
    and milestones given as fractions of `max_epochs` (`resolve_milestones`)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: Sequence[int | float],
        gamma: float = 0.1,
        reset_state: bool = False,
        max_epochs: int | None = None,
        last_epoch: int = -1,
    ) -> None:
        self.reset_state = bool(reset_state)
        super().__init__(optimizer, resolve_milestones(milestones, max_epochs), gamma=gamma, last_epoch=last_epoch)

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch; at a milestone (with `reset_state`) the next step starts with fresh momentum."""
        super().step() if epoch is None else super().step(epoch)
        if self.reset_state and self.last_epoch in self.milestones:
            self.optimizer.state.clear()


SHAPES = ("step", "cosine")


class EpochSchedule(MultiStepLR):
    """The learning rate per epoch in one of two shapes. `step`: `MultiStepLR` above, a drop by `gamma` after each
    milestone (the study's). `cosine`: half a cosine from the initial rate down to 0 over `max_epochs` (what
    torch's `CosineAnnealingLR` computes), a shape that suits a run of any length with no milestone to place, the
    rate still high in the first epochs and small in the last ones whether the run has 3 epochs or 300
    (benchmarks/defaults_effect.py measures both at two lengths). One class for both, so a saved config names
    one kind of object whatever the shape."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        shape: str = "step",
        milestones: Sequence[int | float] = (0.6,),
        gamma: float = 0.1,
        reset_state: bool = False,
        max_epochs: int | None = None,
        last_epoch: int = -1,
    ) -> None:
        require(shape in SHAPES, "shape", shape, " | ".join(SHAPES))
        if shape == "cosine":
            require(is_int(max_epochs) and max_epochs >= 1, "max_epochs", max_epochs, "an integer >= 1")
        self.shape = shape
        self.max_epochs = max_epochs
        stepped = list(milestones) if shape == "step" else []
        super().__init__(
            optimizer, stepped, gamma=gamma, reset_state=reset_state, max_epochs=max_epochs, last_epoch=last_epoch
        )

    def get_lr(self) -> list[float]:
        if self.shape == "step":
            return super().get_lr()
        done = min(max(self.last_epoch, 0), self.max_epochs) / self.max_epochs
        return [base * (1.0 + math.cos(math.pi * done)) / 2.0 for base in self.base_lrs]


class CosineRestarts(torch.optim.lr_scheduler.LRScheduler):
    """Snapshot ensembles' schedule (Huang et al. 2017): `cycles` cosine annealings, each restarting at the peak.

    Stepped after every optimizer step (`interval = "step"`): within a cycle of C steps the learning rate is
    min_lr + (peak - min_lr) (1 + cos(pi t / C)) / 2 at step t, so it falls from the peak to about `min_lr` at
    the cycle's last step and is back at the peak for the first step of the next cycle, the "restart" that
    sends the weights to another minimum. C = total steps / cycles; the training module supplies the total
    (`set_total_steps`) once Lightning knows the batches per epoch, so a cycle ends with an epoch exactly
    when the epochs divide into whole cycles (the snapshot callback checks that).
    """

    interval = "step"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        cycles: int,
        min_lr: float = 0.0,
        total_steps: int | None = None,
        last_epoch: int = -1,
    ) -> None:
        require(
            is_int(cycles) and cycles >= 1,
            "cycles",
            cycles,
            "an integer >= 1",
        )
        require(isinstance(min_lr, (int, float)) and min_lr >= 0, "min_lr", min_lr, "a learning rate >= 0")
        self.cycles = cycles
        self.min_lr = float(min_lr)
        self.total_steps = total_steps
        super().__init__(optimizer, last_epoch)

    def set_total_steps(self, total_steps: int) -> None:
        """The number of optimizer steps of the whole fit (cycles share it equally)."""
        self.total_steps = int(total_steps)

    def cycle_length(self) -> int:
        return max(1, (self.total_steps or self.cycles) // self.cycles)

    def get_lr(self) -> list[float]:
        position = self.last_epoch % self.cycle_length()
        factor = (1.0 + math.cos(math.pi * position / self.cycle_length())) / 2.0
        return [self.min_lr + (base - self.min_lr) * factor for base in self.base_lrs]
