"""A small CNN for scikit-learn's 8x8 digits and the one split its users train and test on.

Seconds to train on a CPU: the digits-CNN benchmarks (benchmarks/ensemble.py, certify.py, minimal_norm.py) and the
attack and cascade tests evaluate it, so they share one model and one split.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 digits; it carries mean/std buffers and normalizes inside, like PreActResNet."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.3]).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor([0.4]).view(1, 1, 1, 1))
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 10),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.std)


def digits_split(seed: int = 0) -> tuple[Tensor, Tensor, Tensor, torch.Generator]:
    """scikit-learn's 8x8 digits as (N, 1, 8, 8) floats in [0, 1] and int64 labels, a permutation drawn from a
    generator seeded with `seed` (returned: later shuffles continue its stream), and the global seed set: the one
    split every digits-CNN benchmark and test trains and tests on."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    torch.manual_seed(seed)
    return x, y, perm, g
