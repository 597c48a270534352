"""SVHN (Street View House Numbers) through torchvision's loader, as uint8 NCHW tensors.

The `.mat` files live in `<root>/svhn/` (torchvision would drop them straight into `root`, mixed with
every other dataset). torchvision already maps the label 10 of digit 0 to 0 and transposes the
(H, W, C, N) MATLAB array to (N, C, H, W).

`extra=true` reproduces the report's Table 1 setup: the training set is `train + extra[10000:]` and
`extra[:10000]` becomes the validation split, so nothing is carved out of `train`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.io.matlab import MatReadError
from torchvision.datasets import SVHN

from adv_smooth.data import archive
from adv_smooth.data.base import ImageDataModule, Split, Splits
from adv_smooth.utils.errors import UserError, require, require_bool

# What scipy.io.loadmat (and the array handling after it) raises on a truncated or foreign file.
_MAT_ERRORS = (MatReadError, OSError, EOFError, IndexError, KeyError, ValueError, TypeError)


class SvhnDataModule(ImageDataModule):
    """SVHN train/test, optionally with the extra set folded in as in the report.

    Defaults follow the report: no normalization (images stay in [0, 1] for the model) and no
    horizontal flip (a mirrored digit is a different picture).

    Args:
        extra: fold SVHN's extra split (531,131 images) into training, its first `extra_val_size` as validation.
        extra_val_size: with `extra`, how many extra images form the validation split.
        flip: with `augment`, also flip half the training images horizontally (default false: a mirrored digit
            is a different picture).
        normalize: the model standardizes its input with `mean`/`std` (default false: images stay in [0, 1]).
    """

    @classmethod
    def ships_val_split(cls, options: Mapping[str, Any]) -> bool:
        """`extra=true`: `extra[:extra_val_size]` is the validation split."""
        return bool(options.get("extra"))

    def __init__(
        self,
        extra: bool = False,
        extra_val_size: int = 10000,
        flip: bool = False,
        normalize: bool = False,
        **kwargs,
    ) -> None:
        require(
            isinstance(extra_val_size, int) and extra_val_size >= 1,
            "extra_val_size",
            extra_val_size,
            "an integer >= 1",
        )
        require_bool("extra", extra)
        super().__init__(flip=flip, normalize=normalize, **kwargs)
        self.extra = extra
        self.extra_val_size = extra_val_size

    @property
    def folder(self) -> Path:
        return self.root / "svhn"

    def load_splits(self) -> Splits:
        train, test = self._load("train"), self._load("test")
        val = None
        if self.extra:
            extra_x, extra_y = self._load("extra")
            n = self.extra_val_size
            require(
                n < len(extra_y),
                "extra_val_size",
                n,
                f"fewer than the {len(extra_y)} images of the extra split",
            )
            val = (extra_x[:n], extra_y[:n])
            train = (torch.cat([train[0], extra_x[n:]]), torch.cat([train[1], extra_y[n:]]))
        return Splits(train=train, test=test, val=val, classes=[str(d) for d in range(10)])

    def _load(self, split: str) -> Split:
        """One split as tensors; every way the file can be absent or damaged is a one-line error."""
        url, filename, md5 = SVHN.split_list[split]
        path = self.folder / filename
        archive.fetch_if_missing(path, url, md5, self.download, f"SVHN {split} split")
        try:
            dataset = SVHN(str(self.folder), split=split, download=False)
        except RuntimeError as err:  # torchvision's MD5 check failed on an existing file
            raise UserError(f"{path} is corrupted (checksum mismatch): delete it, set download=true") from err
        except _MAT_ERRORS as err:
            raise UserError(
                f"{path} is corrupted or not an SVHN .mat file ({archive.one_line(err)}): "
                "delete it and set download=true"
            ) from err
        images, labels = np.asarray(dataset.data), np.asarray(dataset.labels).reshape(-1)
        if images.ndim != 4 or images.shape[1:] != (3, 32, 32) or len(images) != len(labels):
            raise UserError(
                f"{path} is not an SVHN .mat file: X must be 32x32x3xN with N labels in y, "
                f"found images {images.shape[1:]} x {len(images)} and {len(labels)} labels"
            )
        return torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)), torch.from_numpy(labels.astype(np.int64))
