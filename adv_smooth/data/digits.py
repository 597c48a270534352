"""scikit-learn's handwritten digits: 1,797 real 8x8 images shipped with scikit-learn (offline).

The default dataset, so a first run needs no download. Images are upsampled to 32x32 (bilinear)
so the same CIFAR-style network and SNR budgets apply unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from adv_smooth.data.base import ImageDataModule, Splits
from adv_smooth.utils.errors import is_number, require, require_int


class DigitsDataModule(ImageDataModule):
    """Digits with a fixed stratified-by-shuffle test split (`test_fraction`, `split_seed`).

    Args:
        size: the side in pixels the 8x8 images are upsampled to.
        test_fraction: the share of the 1,797 images held out as the test split.
    """

    needs_files = False  # scikit-learn ships the images

    def __init__(self, size: int = 32, test_fraction: float = 0.25, **kwargs) -> None:
        require_int("size", size, 1)
        require(
            is_number(test_fraction) and 0 < test_fraction < 1,
            "test_fraction",
            test_fraction,
            "a number in (0, 1)",
        )
        super().__init__(**kwargs)
        self.size = size
        self.test_fraction = test_fraction

    def load_splits(self) -> Splits:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        images = (x.clamp(0, 1) * 255).round().to(torch.uint8)
        labels = torch.as_tensor(bunch.target, dtype=torch.int64)
        perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1234))
        n_test = int(round(self.test_fraction * len(labels)))
        test, train = perm[:n_test], perm[n_test:]
        return Splits(
            train=(images[train], labels[train]),
            test=(images[test], labels[test]),
            classes=[str(i) for i in range(10)],
        )
