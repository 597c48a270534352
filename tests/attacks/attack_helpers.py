"""Tiny models and images for the attack tests (a uniquely named module, so no other conftest shadows it)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from adv_smooth.defenses.plain_loop import fit_classifier
from adv_smooth.models import PreActResNet
from adv_smooth.models.digits_cnn import DigitsCNN

MEAN = (0.45, 0.5, 0.55)
STD = (0.2, 0.25, 0.3)


def tiny_resnet(seed: int = 0) -> PreActResNet:
    """A 2-block PreAct ResNet whose BN running stats are not the defaults (so changes are visible)."""
    torch.manual_seed(seed)
    model = PreActResNet(num_classes=10, in_channels=3, width=8, blocks=(1, 1), mean=MEAN, std=STD)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, 3, 16, 16))
    return model


def interior_images(n: int = 8, seed: int = 1, size: int = 16) -> Tensor:
    """Images in [0.3, 0.7]: the budgets at the tested SNRs never reach the borders, so nothing is clamped."""
    g = torch.Generator().manual_seed(seed)
    return 0.3 + 0.4 * torch.rand(n, 3, size, size, generator=g)


def train_digits_cnn() -> tuple[nn.Module, Tensor, Tensor]:
    """A CNN trained for about a second on sklearn's 8x8 digits; returns (model, test images, test labels)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=g)
    train, test = perm[:1400], perm[1400:]
    torch.manual_seed(0)
    model = fit_classifier(DigitsCNN(), x, y, train, epochs=15, generator=g)
    return model, x[test], y[test]
