"""An ensemble of classifiers as one differentiable network: the log of the mean of the members' softmax.

Snapshot ensembles (Huang et al. 2017) average the members' predicted probabilities. Returning
log(mean_k softmax(f_k(x))) keeps the network contract every attack and metric expects (images in [0, 1] ->
one row of scores per image, argmax = prediction): softmax of these scores is the ensemble's probability,
so the cross-entropy an attack maximizes is -log p_ensemble(y | x), and its input gradient runs through
every member (white-box: the attack sees the whole ensemble, never one member at a time). The log-mean is
computed as logsumexp(log_softmax) - log M, stable even when a member is very confident.

Cost: every forward (and backward) pass runs all M members, so an attack step on the ensemble costs M
member passes; `passes_per_step` says so to whoever reports the evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Ensemble(nn.Module):
    """log(mean_k softmax(member_k(x))) for the given members (each maps [0, 1] images to logits)."""

    def __init__(self, members: Iterable[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        if len(self.members) == 0:
            raise ValueError("an ensemble needs at least one member")

    @property
    def passes_per_step(self) -> int:
        """Member forward passes per ensemble forward (and backward passes per attack gradient)."""
        return len(self.members)

    def forward(self, x: Tensor) -> Tensor:
        log_probs = torch.stack([F.log_softmax(member(x).float(), dim=1) for member in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))
