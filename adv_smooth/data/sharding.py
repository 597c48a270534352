"""Evaluation splits shared by several processes (DDP): every image exactly once, every process as many batches.

Lightning's own `DistributedSampler` pads the last shard with repeated images, so that every process gets the
same number of samples; on a split whose size the number of processes does not divide, accuracies and
robustness counts then include a few images twice. `EvalShards` gives process r the images r, r + W, r + 2W, ...
(W processes) and nothing else, and cuts every shard into the same number of batches, of at most the loader's
batch size: per-batch collectives (the preemption check) stay matched across processes, and the fixed
validation subset (the first images of the split) is spread over all processes instead of loading the first.

It is a `DistributedSampler` (so Lightning injects none of its own) that yields whole batches of indices, used
with `DataLoader(batch_size=None)`. `sample_order` tells an evaluation which image of the split each sample is.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from adv_smooth.utils.errors import UserError


class EvalShards(DistributedSampler):
    """Batches of the images `rank, rank + num_replicas, ...` of `dataset`, unpadded, in order.

    Every rank yields `len(self)` batches (the largest shard's count at `batch_size`): shards differ by one image
    at most, and a shard is split as evenly as possible (sizes differ by one at most). When the smallest shard
    has fewer images than that count, fewer, larger batches are used so that no batch is empty.
    """

    def __init__(self, dataset: Sized, batch_size: int, num_replicas: int, rank: int, split: str = "split") -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        n = len(dataset)
        if 0 < n < num_replicas:
            raise UserError(
                f"the {split} has {n} image(s), fewer than the {num_replicas} processes evaluating it "
                "(trainer.devices x trainer.num_nodes): use fewer devices for it"
            )
        self.order = list(range(rank, n, num_replicas))
        self.num_samples, self.total_size = len(self.order), n
        largest, smallest = math.ceil(n / num_replicas), n // num_replicas
        self.batches = min(math.ceil(largest / batch_size), smallest) if n else 0

    def __iter__(self) -> Iterator[list[int]]:
        size, extra = divmod(len(self.order), self.batches) if self.batches else (0, 0)
        start = 0
        for b in range(self.batches):
            stop = start + size + (b < extra)
            yield self.order[start:stop]
            start = stop

    def __len__(self) -> int:
        return self.batches


def shard_loader(
    dataset: Sized, batch_size: int, num_replicas: int, rank: int, split: str, **loader_options
) -> DataLoader:
    """A loader of this process's `EvalShards` of `dataset` (the dataset must accept a list of indices)."""
    sampler = EvalShards(dataset, batch_size, num_replicas, rank, split)
    return DataLoader(dataset, batch_size=None, sampler=sampler, **loader_options)


def sample_order(loader: object) -> Tensor | None:
    """The split index of each sample, in the order `loader` yields them; None when that is 0, 1, 2, ...

    Knows `EvalShards` and any non-shuffling `DistributedSampler` (Lightning's padded one repeats a few images:
    whoever gathers the shards must count each index once, as `records.merge` does).
    """
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, EvalShards):
        return torch.tensor(sampler.order, dtype=torch.long)
    if isinstance(sampler, DistributedSampler) and not sampler.shuffle:
        return torch.tensor(list(iter(sampler)), dtype=torch.long)
    return None
