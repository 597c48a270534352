"""The three defenses composed, through one training step as the LightningModule runs it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from adv_smooth.defenses.adversarial import AdversarialTraining
from adv_smooth.defenses.base import Compose, TrainBatch
from adv_smooth.defenses.parseval import Parseval
from adv_smooth.defenses.smoothness import LaplacianSmoothness
from adv_smooth.models.preact_resnet import PreActResNet


def test_adv_parseval_smooth_training_step() -> None:
    defense = Compose([AdversarialTraining(fraction=0.5), Parseval(beta=0.01), LaplacianSmoothness(gamma=0.01, m=2)])
    assert defense.needs_activations
    assert defense.model_options == {"scaled_conv": True, "residual": "convex"}
    torch.manual_seed(0)
    model = PreActResNet(num_classes=10, in_channels=1, width=4, blocks=(1, 1), **defense.model_options).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.rand(12, 1, 8, 8), torch.arange(12) % 10
    before = model.stem.weight.clone()

    batch = defense.prepare_batch(model, TrainBatch.clean(x, y))
    assert int(batch.clean_mask.sum()) == 6
    logits, taps = model(batch.inputs, return_activations=True)
    ce = F.cross_entropy(logits, batch.targets, reduction="none")
    terms = defense.loss_terms(batch, logits, taps)
    assert set(terms) == {"smooth"}
    loss = (batch.weight * ce).sum() / batch.weight.sum() + sum(terms.values())
    opt.zero_grad()
    loss.backward()
    opt.step()
    defense.after_optimizer_step(model)
    assert math.isfinite(loss.item())
    assert not torch.equal(model.stem.weight, before)
