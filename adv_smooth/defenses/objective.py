"""The training objective of one batch: a defense's hooks around the network, then the summed loss terms.

One function for every training loop that must compute the same loss: `RobustClassifier.training_step` and the
plain PyTorch loops of `benchmarks/` call it, so a benchmark's "same training" cannot drift from the module's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adv_smooth.defenses.base import Defense, TrainBatch


@dataclass
class Objective:
    """What one step computed: the batch the network saw, its logits, the named terms and their sum."""

    batch: TrainBatch
    logits: Tensor
    terms: dict[str, Tensor]
    loss: Tensor


def forward_passes(net: nn.Module, tb: TrainBatch, activations: bool) -> tuple[Tensor, list[Tensor] | None]:
    """Logits (and activations) of `tb.inputs`, in one pass or in the separate passes `tb.passes` asks for.

    Separate passes give each group its own BatchNorm batch statistics and one running-statistics update
    each; concatenating the outputs back in row order keeps a single loss for both cases.
    """
    parts = [tb.inputs] if not tb.passes or len(tb.passes) == 1 else list(tb.inputs.split(list(tb.passes)))
    outs = [net(part, return_activations=True) if activations else (net(part), None) for part in parts]
    if len(outs) == 1:
        return outs[0]
    logits = torch.cat([o[0] for o in outs])
    if outs[0][1] is None:
        return logits, None
    return logits, [torch.cat(taps) for taps in zip(*(o[1] for o in outs))]


def training_objective(net: nn.Module, defense: Defense, batch: TrainBatch) -> Objective:
    """prepare_batch -> forward -> cross-entropy sum(weight * ce) / sum(weight) + the defense's loss terms."""
    tb = defense.prepare_batch(net, batch)
    logits, activations = forward_passes(net, tb, defense.needs_activations)
    ce = (F.cross_entropy(logits, tb.targets, reduction="none") * tb.weight).sum() / tb.weight.sum()
    terms = {"ce": ce, **defense.loss_terms(tb, logits, activations)}
    return Objective(tb, logits, terms, torch.stack(list(terms.values())).sum())
