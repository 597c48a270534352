"""`eval.test_subset`: evaluate part of the test split, the same part in training and in `adv_smooth.evaluate`.

A strong evaluation of a whole test split can take hours; Lightning's `limit_test_batches` would cut it, but
silently, and it is not a key evaluation accepts. `TestSubset` replaces the datamodule's test split by the
first `n` images (`seed` null) or by a stratified sample of `n` drawn with `seed` (each class keeps its share
of the split, to one image), before the test loop asks for its loader: the clean accuracy, every attack and the
per-image records then see the same images. The subset keeps the images' places in the whole split
(`SubsetImages.split_index`), so per-image records still name them and reports pair only identical subsets;
`results()` puts what was evaluated into results.json.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from adv_smooth.data.base import TensorImages
from adv_smooth.utils.errors import UserError, is_int, require

MAX_IMAGES = 10**9  # far above any test split; a sane bound for an integer knob


class SubsetImages(TensorImages):
    """Some images of a split; `split_index[i]` is image i's place in the whole split of `split_size` images."""

    def __init__(self, images: Tensor, labels: Tensor, split_index: Tensor, seed: int | None) -> None:
        super().__init__(images[split_index], labels[split_index])
        self.split_index, self.split_size, self.seed = split_index, len(labels), seed


def check_test_subset(n: Any, seed: Any) -> None:
    """One line naming the bad value and what is allowed (constructors run before any data is read)."""
    require(
        n is None or (is_int(n) and 1 <= n <= MAX_IMAGES),
        "n",
        n,
        f"null (the whole test split) or a number of images from 1 to {MAX_IMAGES}",
    )
    require(
        seed is None or (is_int(seed) and 0 <= seed < 2**63),
        "seed",
        seed,
        "null (the first `n` images) or an integer >= 0 (a stratified sample drawn with that seed)",
    )
    require(
        seed is None or n is not None,
        "seed",
        seed,
        "it draws a sample of `n` images: set `n` too, or leave the seed null",
    )


def subset_index(labels: Tensor, n: int, seed: int | None) -> Tensor:
    """Sorted split positions of `n` images: the first `n`, or a stratified sample drawn with `seed`.

    Stratified: class c gets floor(n * size_c / N) images, and the classes with the largest remainders one more
    (ties to the lower class), so the total is exactly n and no class gets more images than it has.
    """
    total = len(labels)
    if seed is None:
        return torch.arange(n)
    classes, counts = torch.unique(labels, return_counts=True)
    quota = counts * n // total
    remainder = counts * n - quota * total
    extra = sorted(range(len(classes)), key=lambda c: (-int(remainder[c]), c))[: n - int(quota.sum())]
    quota[extra] += 1
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c, k in zip(classes, quota.tolist()):
        members = torch.nonzero(labels == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.cat(chosen).sort().values


def describe(n: int, total: int, seed: int | None) -> str:
    """`the first 100 of 360 test images` / `a stratified sample of 100 of 360 test images (seed 3)`."""
    if seed is None:
        return f"the first {n} of {total} test images"
    return f"a stratified sample of {n} of {total} test images (seed {seed})"


class TestSubset(pl.Callback):
    """Restricts the datamodule's test split to `n` images (null: the whole split) as the test stage sets up."""

    __test__ = False  # a Lightning callback, not a pytest class

    def __init__(self, n: int | None = None, seed: int | None = None) -> None:
        check_test_subset(n, seed)
        self.n, self.seed = n, seed
        self._chosen: SubsetImages | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """At every stage (so `fit` refuses a subset larger than the split before training), applied at `test`."""
        if self.n is None:
            return
        images, labels = self.test_split(trainer.datamodule)
        if stage == "test":
            if self._chosen is None:
                self._chosen = SubsetImages(images, labels, subset_index(labels, self.n, self.seed), self.seed)
            trainer.datamodule.test_set = self._chosen

    def test_split(self, datamodule: Any) -> tuple[Tensor, Tensor]:
        """The whole test split (images, labels) of a loaded datamodule; refuses a subset larger than it."""
        splits = getattr(datamodule, "splits", None)
        if splits is None or not hasattr(datamodule, "test_set"):
            raise UserError(f"n={self.n} needs one of the project's datasets, loaded")
        images, labels = splits.test
        require(
            self.n is None or self.n <= len(labels),
            "n",
            self.n,
            f"at most the {len(labels)} images of the test split (or null for all of them)",
        )
        return images, labels

    def results(self) -> dict[str, Any]:
        """Merged into results.json: which test images were evaluated (nothing when the whole split was)."""
        if self._chosen is None:
            return {}
        n, total = len(self._chosen), self._chosen.split_size
        return {"test_subset": {"n": n, "of": total, "seed": self.seed, "images": describe(n, total, self.seed)}}
