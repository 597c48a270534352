"""The in-memory image DataModule every dataset builds on.

The whole dataset lives as uint8 tensors, so a training step never decodes an image: the loader
slices a batch of indices, and conversion to float + augmentation happen on the device in
`on_after_batch_transfer` (one vectorized op per batch instead of per-sample CPU transforms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from adv_smooth.data.identity import TRAINING_ONLY
from adv_smooth.data.resident import ON_DEVICE, DeviceBatches, resident_device, to_device
from adv_smooth.data.sharding import shard_loader
from adv_smooth.utils.errors import is_number, require, require_bool, require_choice, require_int

Split = tuple[Tensor, Tensor]  # (uint8 images (N, C, H, W), int64 labels (N,))


@dataclass
class Splits:
    """What a dataset loader returns. `val=None` means: carve it from `train`."""

    train: Split
    test: Split
    classes: list[str]
    val: Split | None = None


class TensorImages(Dataset):
    """uint8 images + labels served a whole batch at a time (`__getitems__`): no per-sample Python."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices)
        return self.images[idx], self.labels[idx]


def _keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """collate_fn for `TensorImages`: the batch is already stacked."""
    return batch


def channel_stats(images: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of uint8 images in [0, 1] units, accumulated in float64 chunks."""
    n, c = images.shape[:2]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for chunk in images.split(4096):
        x = chunk.to(torch.float64).div_(255).transpose(0, 1).reshape(c, -1)
        total += x.sum(1)
        total_sq += (x * x).sum(1)
    count = n * images[0, 0].numel()
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


PAD_MODES = ("zeros", "reflect")  # how the random crop pads: black borders, or the image mirrored at its edges


def augment(
    x: Tensor, padding: int, flip: bool, generator: torch.Generator | None = None, pad_mode: str = "zeros"
) -> Tensor:
    """Random crop with padding (`pad_mode`: zeros, or reflect as many plain loops do) and optional horizontal flip,
    for a whole batch at once.

    Each image gets its own offset (and flip): build one flat index per image (crop offset, with the
    columns reversed for flipped images) and do a single `gather`, rather than looping; this is ~5x
    faster on CPU than indexing with four broadcast index tensors, and draws the same random numbers
    in the same order (dy, dx, then the flip mask), so results are unchanged.
    """
    n, c, h, w = x.shape
    if padding <= 0 and not flip:
        return x
    dy = dx = torch.zeros(n, dtype=torch.int64, device=x.device)
    if padding > 0:
        x = torch.nn.functional.pad(x, (padding,) * 4, mode="constant" if pad_mode == "zeros" else "reflect")
        dy = torch.randint(0, 2 * padding + 1, (n,), device=x.device, generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), device=x.device, generator=generator)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None]
    if flip:
        flip_mask = torch.rand(n, device=x.device, generator=generator) < 0.5
        cols = torch.where(flip_mask[:, None], cols.flip(1), cols)
    rows = dy[:, None] + torch.arange(h, device=x.device)[None]
    index = (rows[:, :, None] * x.shape[3] + cols[:, None, :]).reshape(n, 1, h * w)
    return x.reshape(n, c, -1).gather(2, index.expand(n, c, h * w)).reshape(n, c, h, w)


class ImageDataModule(pl.LightningDataModule):
    """Base DataModule: subclasses implement `load_splits()` and nothing else.

    `normalize=False` ships mean 0 / std 1 to the model (the report's SVHN choice); `mean`/`std`
    given explicitly are fixed statistics (e.g. LPN's CIFAR-10 values) that override the ones computed
    from the training images.

    `val_fraction=0` trains on every training image (LPN did): the validation split is empty, so
    nothing can pick a best epoch and the tested weights must be the last epoch's (`eval.checkpoint=last`).

    `unaugmented_fraction` (with `augment=true`): the last round(fraction * n) rows of each training batch
    skip the crop and flip, and the batch becomes (images, labels, that count), so the module marks only
    those rows clean and the smoothness loss reads only them. The report fixed the smoothness loss under
    adversarial augmentation by using the clean half only (section 4.2.2) and named the same fix for
    ordinary augmentation as future work: this is it.

    Args:
        root: the folder the dataset's files are read from (and downloaded into).
        download: fetch the files into `root` when they are missing.
        batch_size: training images per batch (per process).
        eval_batch_size: images per validation/test batch (null: max(batch_size, 256)).
        val_fraction: the share of the training images held out as the validation split (0: none).
        split_seed: seeds the shuffle that carves the validation split out of the training images.
        augment: random crop (with `padding`) and, with `flip`, horizontal flip of the training images.
        flip: with `augment`, also flip half the training images horizontally.
        padding: the random crop's padding in pixels (null: an eighth of the image side, at least 1).
        pad_mode: the random crop's padding: zeros | reflect.
        normalize: the model standardizes its input with `mean`/`std` (false: mean 0, std 1).
        mean: per-channel mean the model subtracts (null: computed from the training images).
        std: per-channel standard deviation the model divides by (null: computed from the training images).
        num_workers: DataLoader worker processes (0: load in the main process).
        unaugmented_fraction: with `augment`, this share of each training batch skips crop and flip.
        on_device: keep the uint8 images in GPU memory when they fit: auto | true | false.
    """

    #: Whether the images are read from files under `root` (False: they ship inside a Python package).
    needs_files: ClassVar[bool] = True
    #: The options that change where the files are or how a run feeds the images to its network (loading,
    #: batching, augmentation, the normalization inside the model), not which images each split holds.
    training_only_keys: ClassVar[frozenset[str]] = TRAINING_ONLY

    @classmethod
    def ships_val_split(cls, options: Mapping[str, Any]) -> bool:
        """Whether the dataset configured by `options` brings a validation split of its own (then nothing is carved
        out of the training images, whatever `val_fraction` says)."""
        return False

    def __init__(
        self,
        root: str | Path = "data",
        download: bool = True,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        augment: bool = False,
        flip: bool = True,
        padding: int | None = None,
        pad_mode: str = "reflect",
        normalize: bool = True,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        num_workers: int = 0,
        unaugmented_fraction: float = 0.0,
        on_device: bool | str = "auto",
    ) -> None:
        super().__init__()
        require(
            on_device in ON_DEVICE and (on_device == "auto" or isinstance(on_device, bool)),
            "on_device",
            on_device,
            "auto (keep the images on a single GPU when they fit), true or false",
        )
        require_int("batch_size", batch_size, 1)
        require_int("eval_batch_size", eval_batch_size, 1, allow_none=True)
        require(
            is_number(val_fraction) and 0 <= val_fraction < 1,
            "val_fraction",
            val_fraction,
            "a fraction in [0, 1)",
        )
        require(
            is_number(unaugmented_fraction) and 0 <= unaugmented_fraction <= 1,
            "unaugmented_fraction",
            unaugmented_fraction,
            "a number in [0, 1]: the share of each training batch left un-augmented",
        )
        require_int("split_seed", split_seed, 0)
        require_int("num_workers", num_workers, 0)
        require_int("padding", padding, 0, allow_none=True)
        require_choice("pad_mode", pad_mode, PAD_MODES)
        for key, flag in (("augment", augment), ("flip", flip), ("normalize", normalize), ("download", download)):
            require_bool(key, flag)
        require(root is not None and isinstance(root, (str, Path)), "root", root, "a folder path")
        for key, stats, positive in (("mean", mean, False), ("std", std, True)):
            require(
                stats is None
                or (
                    isinstance(stats, Sequence)
                    and not isinstance(stats, str)
                    and len(stats) > 0
                    and all(is_number(v) and (v > 0 or not positive) for v in stats)
                ),
                key,
                list(stats) if isinstance(stats, Sequence) and not isinstance(stats, str) else stats,
                f"null, or a list of {'positive ' if positive else ''}numbers, one per image channel",
            )
        self.unaugmented_fraction = float(unaugmented_fraction)
        self.root = Path(root).expanduser()
        self.download = download
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 256)
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.augment_train = augment
        self.flip = flip
        self.padding = padding
        self.pad_mode = pad_mode
        self.normalize = normalize
        # Any sequence (a config list too): store plain float tuples, as the properties promise.
        self._mean = None if mean is None else tuple(float(v) for v in mean)
        self._std = None if std is None else tuple(float(v) for v in std)
        self.num_workers = num_workers
        self.on_device = on_device
        self._resident: dict[str, Any] = {}  # split name -> its TensorImages on the device (data/resident.py)
        self.splits: Splits | None = None
        self.train_set = self.val_set = self.test_set = None

    # -- to implement --------------------------------------------------------------------------
    def load_splits(self) -> Splits:
        raise NotImplementedError

    # -- what the model needs to know -----------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return self._loaded().classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self._loaded().train[0].shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        h, w = self._loaded().train[0].shape[2:]
        return int(h), int(w)

    @property
    def mean(self) -> tuple[float, ...]:
        self._stats()
        return self._mean

    @property
    def std(self) -> tuple[float, ...]:
        self._stats()
        return self._std

    # -- Lightning hooks ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Load once; later calls (Lightning calls setup per stage) reuse the tensors."""
        if self.splits is not None:
            return
        splits = self.load_splits()
        if splits.val is None:
            splits.train, splits.val = self._carve_validation(splits.train)
        self.splits = splits
        self.train_set = TensorImages(*splits.train)
        self.val_set = TensorImages(*splits.val)
        self.test_set = TensorImages(*splits.test)

    def train_dataloader(self) -> DataLoader | DeviceBatches:
        resident = self._on_device("train", self.train_set)
        if resident is not None:
            return DeviceBatches(resident, self.batch_size, shuffle=True)
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader | DeviceBatches:
        return self._eval_loader(self.val_set, "validation split")

    def test_dataloader(self) -> DataLoader | DeviceBatches:
        return self._eval_loader(self.test_set, "test split")

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Any, ...]:
        """Float images in [0, 1], augmented while training; (x, y, n) when the last n rows stay un-augmented."""
        images, labels = batch
        x = images.float().div_(255) if images.dtype == torch.uint8 else images
        if self.augment_train and self.trainer is not None and self.trainer.training:
            keep = round(self.unaugmented_fraction * len(x))
            if keep == 0:
                return augment(x, self.crop_padding, self.flip, pad_mode=self.pad_mode), labels
            cut = len(x) - keep
            x = (
                torch.cat([augment(x[:cut], self.crop_padding, self.flip, pad_mode=self.pad_mode), x[cut:]])
                if cut
                else x
            )
            return x, labels, keep
        return x, labels

    # -- helpers --------------------------------------------------------------------------------
    @property
    def crop_padding(self) -> int:
        """4 px at 32x32, 8 px at 64x64 unless set explicitly."""
        return self.padding if self.padding is not None else max(1, self.image_size[0] // 8)

    def _loaded(self) -> Splits:
        if self.splits is None:
            self.setup()
        return self.splits

    def _stats(self) -> None:
        c = self.channels
        if not self.normalize:  # wins over an explicit mean/std, as the class docstring promises
            self._mean, self._std = (0.0,) * c, (1.0,) * c
            return
        if self._mean is None or self._std is None:
            mean, std = channel_stats(self._loaded().train[0])
            self._mean = self._mean or mean
            self._std = self._std or std
        require(len(self._mean) == c, "mean", self._mean, f"{c} values, one per image channel")
        require(len(self._std) == c, "std", self._std, f"{c} values, one per image channel")

    def _carve_validation(self, train: Split) -> tuple[Split, Split]:
        images, labels = train
        n_val = int(round(self.val_fraction * len(labels)))
        if n_val == 0:
            return train, (images[:0], labels[:0])
        perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        return (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx])

    def _loader(self, dataset: TensorImages, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, **self._loader_options())

    def _on_device(self, name: str, dataset: TensorImages) -> TensorImages | None:
        """`dataset` moved to the trainer's GPU once (and kept), when `on_device` says so; else None."""
        if self.trainer is None:
            return None
        if name not in self._resident:
            nbytes = sum(
                t.numel() * t.element_size() for t in (*self.splits.train, *self.splits.val, *self.splits.test)
            )
            device = resident_device(self.on_device, self.trainer.strategy.root_device, self.trainer.world_size, nbytes)
            self._resident[name] = None if device is None else to_device(dataset, device)
        return self._resident[name]

    def _eval_loader(self, dataset: TensorImages, split: str) -> DataLoader | DeviceBatches:
        """In order; under DDP, this process's unpadded shard (`sharding.EvalShards`): each image counted once."""
        world = self.trainer.world_size if self.trainer is not None else 1
        resident = self._on_device(split, dataset)
        if resident is not None:
            return DeviceBatches(resident, self.eval_batch_size, shuffle=False)
        if world == 1:
            return self._loader(dataset, self.eval_batch_size, shuffle=False)
        rank = self.trainer.global_rank
        return shard_loader(dataset, self.eval_batch_size, world, rank, split, **self._loader_options())

    def _loader_options(self) -> dict[str, Any]:
        return {
            "collate_fn": _keep_batch,
            "num_workers": self.num_workers,
            "pin_memory": torch.cuda.is_available(),
            "persistent_workers": self.num_workers > 0,
        }
