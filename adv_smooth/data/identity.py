"""Which images a split holds: what must agree before two runs are compared image by image.

Why: an ensemble's members are judged on one test split, and the report's paired tests (McNemar) compare
two runs' per-image records. Positions alone prove nothing: CIFAR-10 and CIFAR-100 both number their
10,000 test images 0..9999. Two facts identify a split here:

* `split_identity`: the dataset config without the keys that only change how training reads the data
  (where the files are, batch sizes, augmentation); what is left (the dataset, its variant, size,
  channels, validation carve-out) decides which images each split holds.
* `split_fingerprints`: a SHA-256 of each evaluated split's decoded images and labels, recorded by the run
  in results.json, so data that no config key tells apart (two image folders, a re-downloaded or edited
  copy) still differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from torch import Tensor

# Dataset keys that change where the files are or how a run feeds the images to its network (loading, batching,
# augmentation, the normalization inside the model), not which images each split holds.
TRAINING_ONLY = frozenset(
    {
        *("root", "download", "on_device", "num_workers", "batch_size", "eval_batch_size"),
        *("augment", "flip", "padding", "pad_mode", "unaugmented_fraction", "normalize", "mean", "std"),
    }
)
FINGERPRINTED = ("val", "test")  # the splits robustness is evaluated on


def split_identity(dataset: Mapping[str, Any] | None) -> dict[str, Any]:
    """The dataset config's keys that decide which images there are (the training-only ones left out)."""
    return {k: v for k, v in (dataset or {}).items() if k not in TRAINING_ONLY}


def fingerprint(images: Tensor, labels: Tensor) -> str:
    """`sha256:<hex>` of a split's images and labels, their shapes and types included (the bytes alone would
    let a (N, 3, 32, 32) and a (N, 3, 16, 64) split of the same bytes agree)."""
    digest = hashlib.sha256()
    for tensor in (images, labels):
        flat = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(flat.shape)}:{flat.dtype};".encode())
        digest.update(flat.numpy().data)  # the buffer itself: no copy of a large split
    return f"sha256:{digest.hexdigest()}"


def split_fingerprints(datamodule: Any) -> dict[str, str | None]:
    """`fingerprint` of the validation and the whole test split of a set-up data module (None for a split it lacks).

    The test split is read from `splits`, not `test_set`: `eval.test_subset` swaps `test_set` for the images it
    evaluates, whose places in the whole split the per-image records keep, so the print stays the split's own.
    """
    splits = getattr(datamodule, "splits", None)
    found: dict[str, str | None] = {}
    for split in FINGERPRINTED:
        if split == "test" and splits is not None:
            images, labels = splits.test
        else:
            dataset = getattr(datamodule, f"{split}_set", None)
            images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
        found[split] = fingerprint(images, labels) if images is not None and labels is not None else None
    return found
