"""Data resident on the accelerator: the whole uint8 split lives in device memory and batches are sliced there.

Why: a CIFAR-size step on an H200 takes about 10 ms; a host-side DataLoader (index list in Python, a gather on the
CPU, a pinned copy per batch) costs a sizeable share of that and its copy waits in the same stream. CIFAR-10/100
(150 MB as uint8), SVHN with extra (1.9 GB) and Tiny ImageNet (1.2 GB) all fit beside the network on one GPU, so a
single-device run keeps them there: the shuffle is one `randperm` on the device per epoch, a batch is one gather,
and no step waits on the host. Under DDP (several processes, each its shard) the ordinary loaders stay.

`on_device`: `auto` (the default) moves a split when the device is a GPU, the run has one process and the data takes
at most `AUTO_SHARE` of the device's free memory; `true` asks for it wherever there is a GPU; `false` never.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset

ON_DEVICE = ("auto", True, False)
AUTO_SHARE = 0.25  # of the device's free memory: the network, its activations and the attacks need the rest


class DeviceBatches:
    """What a DataLoader over `TensorImages` yields, sliced on the device: (uint8 images, int64 labels) batches.

    Sized and re-iterable like a DataLoader, with the attributes the validation plan reads (`dataset`,
    `batch_size`). No `sampler` attribute: Lightning reads one as a DataLoader's and then wants its `batch_sampler`
    too (found on the first GPU run); without it, Lightning treats this as the plain iterable it is. `shuffle`
    draws one permutation per pass from the device's default generator, which `seed_everything` seeds, so a seeded
    run repeats on the same GPU.
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool) -> None:
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        images, labels = self.dataset.images, self.dataset.labels
        n = len(labels)
        order = torch.randperm(n, device=labels.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:  # evaluation: contiguous slices, in split order (the records' index)
                yield images[start : start + self.batch_size], labels[start : start + self.batch_size]
            else:
                idx = order[start : start + self.batch_size]
                yield images[idx], labels[idx]


def resident_device(
    on_device: object, device: torch.device | None, world_size: int, nbytes: int
) -> torch.device | None:
    """The device to keep the data on, or None for the host loaders (see the module docstring for the rule)."""
    if on_device is False or device is None or device.type != "cuda" or world_size != 1:
        return None
    if on_device is True:
        return device
    free, _ = torch.cuda.mem_get_info(device)
    return device if nbytes <= AUTO_SHARE * free else None


def to_device(dataset: Dataset, device: torch.device) -> Dataset:
    """The same kind of split (`TensorImages`: `.images`, `.labels`) with both tensors on `device`."""
    return type(dataset)(dataset.images.to(device), dataset.labels.to(device))
