"""Top-1 accuracy that never makes the host wait for the device.

torchmetrics' `MulticlassAccuracy` validates its inputs (`torch.unique`) and counts with `bincount`, and
boolean-mask indexing the clean samples out of a batch needs their count: each is a host sync per step.
Here the counts stay on the device as two running sums until `compute()`, which Lightning calls when it
logs the epoch value.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class Accuracy(Metric):
    """Fraction of samples whose arg-max logit is the target, over the samples `mask` keeps (all by default)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, targets: Tensor, mask: Tensor | None = None) -> None:
        hits = logits.argmax(dim=1) == targets
        if mask is None:
            self.correct += hits.sum()
            self.total += targets.numel()
        else:
            self.correct += (hits & mask).sum()
            self.total += mask.sum()

    def compute(self) -> Tensor:
        return self.correct.float() / self.total.clamp_min(1)
