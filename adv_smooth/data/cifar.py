"""CIFAR-10 and CIFAR-100 through torchvision's loaders, converted once into uint8 NCHW tensors.

One class serves both: the variants differ only in torchvision's class (file names, checksums, label
key), so the variant name just selects it. Files live where torchvision puts them:
`<root>/cifar-10-batches-py/` and `<root>/cifar-100-python/`. torchvision verifies every file's MD5
before unpickling; when it refuses, `_diagnose` works out which file is missing or damaged so the
user sees one line naming it rather than torchvision's generic "not found or corrupted". A download
is extracted by `archive.safe_extract_tar` (every member checked, tarfile's `data` filter), never by
torchvision's unfiltered `extract_archive`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torchvision.datasets.cifar as tv_cifar
from torchvision.datasets import CIFAR10, CIFAR100

from adv_smooth.data import archive
from adv_smooth.data.base import ImageDataModule, Split, Splits
from adv_smooth.utils.errors import UserError, require

VARIANTS: dict[str, type[CIFAR10]] = {"cifar10": CIFAR10, "cifar100": CIFAR100}

# What unpickling a damaged batch file can raise (truncation, garbage, a file of the wrong kind).
_UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    ImportError,
)


class CifarDataModule(ImageDataModule):
    """CIFAR-10 (`variant=cifar10`) or CIFAR-100 (`variant=cifar100`, fine labels).

    Mean/std are left to the base class (computed from the training images after the validation
    split is carved off), so no unverified constants are shipped.

    Args:
        variant: cifar10 | cifar100 (fine labels).
    """

    def __init__(self, variant: str = "cifar10", **kwargs) -> None:
        require(variant in VARIANTS, "variant", variant, f"one of {', '.join(VARIANTS)}")
        super().__init__(**kwargs)
        self.variant = variant
        self.source = VARIANTS[variant]

    @property
    def folder(self) -> Path:
        """Where torchvision keeps (and extracts) this variant's batch files."""
        return self.root / self.source.base_folder

    def _files(self) -> list[tuple[str, str]]:
        """(file name, MD5) of every file the loader reads: data batches, test batch, metadata."""
        meta = self.source.meta
        return [*self.source.train_list, *self.source.test_list, (meta["filename"], meta["md5"])]

    def load_splits(self) -> Splits:
        missing = [name for name, _ in self._files() if not (self.folder / name).is_file()]
        if missing and self.download:
            src = self.source
            archive.download_and_extract(src.url, self.root, src.filename, src.tgz_md5)
        try:
            train = self.source(str(self.root), train=True, download=False)
            test = self.source(str(self.root), train=False, download=False)
        except (RuntimeError, OSError, *_UNPICKLE_ERRORS) as err:
            raise self._diagnose() from err
        return Splits(train=_to_tensors(train), test=_to_tensors(test), classes=[str(c) for c in train.classes])

    def _diagnose(self) -> UserError:
        """Name the first missing, checksum-failing or unreadable file (in that order of likelihood)."""
        paths = [(self.folder / name, md5) for name, md5 in self._files()]
        for path, _ in paths:
            if not path.is_file():
                return UserError(
                    f"{self.variant} not found: {path} is missing; set download=true "
                    f"or place {self.source.base_folder} (from {self.source.url}) under {self.root}, "
                    + archive.ROOT_HINT
                )
        for path, md5 in paths:
            # Looked up on torchvision's module at call time: the same check torchvision itself applies.
            if not tv_cifar.check_integrity(str(path), md5):
                return UserError(f"{path} is corrupted (checksum mismatch): delete it and set download=true")
        for path, _ in paths:
            try:
                with open(path, "rb") as f:
                    entry = pickle.load(f, encoding="latin1")
                if not isinstance(entry, dict):
                    raise TypeError(f"expected a dict, found {type(entry).__name__}")
                if path.name == self.source.meta["filename"]:
                    entry[self.source.meta["key"]]
                else:
                    np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                    entry["labels" if "labels" in entry else "fine_labels"]
            except (OSError, *_UNPICKLE_ERRORS) as err:
                return UserError(
                    f"{path} is corrupted or not a {self.variant} batch file ({archive.one_line(err)}): "
                    "delete it and set download=true"
                )
        return UserError(f"could not load {self.variant} from {self.folder}: delete it and set download=true")


def _to_tensors(dataset: CIFAR10) -> Split:
    """torchvision's HWC numpy array -> contiguous uint8 NCHW tensor (once), targets -> int64."""
    images = torch.from_numpy(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2), dtype=np.uint8))
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return images, labels
