"""Plain PyTorch training loops, no Lightning: the one the defense comparisons share (benchmarks/baselines_digits.py
and the defense tests), and the small-model fit of the digits-CNN benchmarks and the attack tests.

It trains through `training_objective`, the module's own loss (prepare_batch -> forward passes -> weighted CE +
the defense's terms), and calls `after_optimizer_step`, so any defense trains here exactly as under Lightning,
minus Lightning: seeds, data order and epochs are the caller's, so two defenses compare like for like.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from adv_smooth.data.digits import DigitsDataModule
from adv_smooth.defenses.base import Defense, TrainBatch
from adv_smooth.defenses.objective import training_objective
from adv_smooth.models.preact_resnet import PreActResNet


def digits_tensors(size: int = 16) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train images, train labels, test images, test labels) of scikit-learn's digits, images in [0, 1]."""
    data = DigitsDataModule(size=size, val_fraction=0.0)
    data.setup()
    (xtr, ytr), (xte, yte) = data.splits.train, data.splits.test
    return xtr.float() / 255, ytr, xte.float() / 255, yte


def train_digits(
    defense: Defense | None,
    xtr: Tensor,
    ytr: Tensor,
    seed: int = 0,
    epochs: int = 10,
    blocks: tuple[int, ...] = (1, 1, 1),
    width: int = 8,
) -> PreActResNet:
    """A small PreAct ResNet, SGD with one-cycle lr, the defense's hooks around every step; returned in eval mode."""
    defense = defense or Defense()
    batch_size, lr = 64, 0.05
    torch.manual_seed(seed)
    model = PreActResNet(num_classes=10, in_channels=xtr.shape[1], width=width, blocks=blocks)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = epochs * -(-len(ytr) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(ytr), generator=order).split(batch_size):
            loss = training_objective(model, defense, TrainBatch.clean(xtr[idx], ytr[idx])).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            defense.after_optimizer_step(model)
            sched.step()
    return model.eval()


def fit_classifier(
    model: nn.Module, x: Tensor, y: Tensor, train: Tensor, epochs: int, generator: torch.Generator
) -> nn.Module:
    """Adam (lr 3e-3), batches of 100 of the rows `train`, reshuffled each epoch from `generator`; eval mode after.

    Shared by the digits-CNN benchmarks and the attack tests' digits model, so the two cannot drift apart.
    """
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for idx in train[torch.randperm(len(train), generator=generator)].split(100):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()
