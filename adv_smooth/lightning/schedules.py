"""Learning-rate schedules, with the original code's optimizer reset as an option.

Both original repositories (the report's svhn.py / tiny_imageNet200.py, LPN's cifar10.py) trained in
periods and built a new optimizer at the start of each one, `optim.SGD(net.parameters(), lr=...)`: the
learning rate dropped and the momentum buffers (Adam: both moment estimates and the step count) restarted
from zero. A plain `MultiStepLR` keeps them. `reset_state=True` clears the optimizer's state at every
milestone, which is what re-creating the optimizer does, so a run reproduces the original step for step
without a new optimizer object (Lightning keeps one for the whole fit, and checkpoints it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class MultiStepLR(torch.optim.lr_scheduler.MultiStepLR):
    """`torch.optim.lr_scheduler.MultiStepLR`, plus `reset_state`: forget the optimizer state at each milestone."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        reset_state: bool = False,
        last_epoch: int = -1,
    ) -> None:
        self.reset_state = bool(reset_state)
        super().__init__(optimizer, list(milestones), gamma=gamma, last_epoch=last_epoch)

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch; at a milestone (with `reset_state`) the next step starts with fresh momentum."""
        super().step() if epoch is None else super().step(epoch)
        if self.reset_state and self.last_epoch in self.milestones:
            self.optimizer.state.clear()
