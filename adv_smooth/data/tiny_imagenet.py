"""Tiny ImageNet-200: 200 classes of 64x64 images, decoded once and cached as a uint8 tensor file.

Layout of the official archive (http://cs231n.stanford.edu/tiny-imagenet-200.zip), under `<root>`:

    tiny-imagenet-200/wnids.txt                       the 200 class ids
    tiny-imagenet-200/train/<wnid>/images/*.JPEG      500 per class -> train (val carved from it)
    tiny-imagenet-200/val/images/*.JPEG               10,000 labelled images -> our TEST split,
    tiny-imagenet-200/val/val_annotations.txt           as in the report (the official test set has
                                                        no labels, so it is not read)

Decoding 110,000 JPEGs takes a while, so the result goes to `tiny-imagenet-200/cache_uint8.pt`
(written atomically) and later runs load only that file. Delete the cache after changing the images.
The model normalizes with ImageNet's mean/std by default, as the report did.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from adv_smooth.data import archive
from adv_smooth.data.base import ImageDataModule, Splits
from adv_smooth.data.decode import decode_images
from adv_smooth.utils.errors import UserError

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
ARCHIVE = "tiny-imagenet-200.zip"
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
FOLDER = "tiny-imagenet-200"
CACHE = "cache_uint8.pt"
CACHE_VERSION = 1
SIZE = (64, 64)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TinyImageNetDataModule(ImageDataModule):
    """Tiny ImageNet-200 with the official val set as test split; classes are the sorted wnids.

    Args:
        mean: per-channel mean the model subtracts (default ImageNet's; null: computed from the training images).
        std: per-channel standard deviation the model divides by (default ImageNet's; null: computed).
    """

    def __init__(
        self,
        mean: tuple[float, ...] | None = IMAGENET_MEAN,
        std: tuple[float, ...] | None = IMAGENET_STD,
        **kwargs,
    ) -> None:
        super().__init__(mean=mean, std=std, **kwargs)

    @property
    def folder(self) -> Path:
        return self.root / FOLDER

    @property
    def cache_path(self) -> Path:
        return self.folder / CACHE

    def load_splits(self) -> Splits:
        data = self._read_cache()
        if data is None:
            self._ensure_extracted()
            data = self._decode_tree()
            self._write_cache(data)
        return Splits(
            train=(data["train_images"], data["train_labels"]),
            test=(data["test_images"], data["test_labels"]),
            classes=list(data["classes"]),
        )

    # -- cache ----------------------------------------------------------------------------------
    def _read_cache(self) -> dict[str, Any] | None:
        """The cached tensors, or None when absent; a damaged or stale cache is rebuilt with a warning."""
        if not self.cache_path.is_file():
            return None
        try:
            data = torch.load(self.cache_path, map_location="cpu", weights_only=True)
            _check_cache(data)
        except (OSError, EOFError, RuntimeError, ValueError, KeyError, TypeError, pickle.UnpicklingError) as err:
            warnings.warn(
                f"ignoring unreadable cache {self.cache_path} ({archive.one_line(err)}); rebuilding it",
                UserWarning,
                stacklevel=2,
            )
            return None
        return data

    def _write_cache(self, data: dict[str, Any]) -> None:
        """torch.save to a temporary file next to the cache, then rename: never a half-written cache.

        A read-only data folder (or a full disk) only costs the next run its speed: warn, go on.
        """
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".cache-", suffix=".pt.tmp", dir=self.folder)
            with os.fdopen(fd, "wb") as f:
                torch.save(data, f)
            os.replace(tmp, self.cache_path)
        except OSError as err:
            warnings.warn(f"could not write {self.cache_path} ({archive.one_line(err)})", UserWarning, stacklevel=2)
        finally:
            if tmp is not None and Path(tmp).exists():
                Path(tmp).unlink()

    # -- source files ---------------------------------------------------------------------------
    def _ensure_extracted(self) -> None:
        """Make `<root>/tiny-imagenet-200/` exist: extract the archive (downloading it if allowed)."""
        if (self.folder / "wnids.txt").is_file():
            return
        zip_path = self.root / ARCHIVE
        if zip_path.is_file():
            archive.verify_md5(zip_path, MD5)
        else:
            archive.fetch_if_missing(zip_path, URL, MD5, self.download, f"Tiny ImageNet ({self.folder}/wnids.txt)")
        if self.folder.exists():
            raise UserError(f"{self.folder} exists but has no wnids.txt (incomplete?): delete it to extract {zip_path}")
        archive.safe_extract_zip(zip_path, self.root)

    def _decode_tree(self) -> dict[str, Any]:
        """List the files of the official layout, check them, and decode all images once."""
        wnids_file = self.folder / "wnids.txt"
        wnids = [line.strip() for line in wnids_file.read_text().splitlines() if line.strip()]
        if not wnids:
            raise UserError(f"{wnids_file} lists no class")
        classes = sorted(set(wnids))
        index = {wnid: i for i, wnid in enumerate(classes)}

        train_paths: list[Path] = []
        train_labels: list[int] = []
        for wnid in classes:
            image_dir = self.folder / "train" / wnid / "images"
            files = sorted(image_dir.glob("*.JPEG")) if image_dir.is_dir() else []
            if not files:
                raise UserError(f"{image_dir} has no .JPEG image: extraction incomplete? delete {self.folder}")
            train_paths += files
            train_labels += [index[wnid]] * len(files)

        test_paths, test_labels = self._val_annotations(index)
        return {
            "version": CACHE_VERSION,
            "classes": classes,
            "train_images": decode_images(train_paths, SIZE),
            "train_labels": torch.tensor(train_labels, dtype=torch.int64),
            "test_images": decode_images(test_paths, SIZE),
            "test_labels": torch.tensor(test_labels, dtype=torch.int64),
        }

    def _val_annotations(self, index: dict[str, int]) -> tuple[list[Path], list[int]]:
        """The official val images with labels from `val_annotations.txt` (file, wnid, box...)."""
        annotations = self.folder / "val" / "val_annotations.txt"
        if not annotations.is_file():
            raise UserError(f"{annotations} not found: the extraction looks incomplete, delete {self.folder}")
        paths: list[Path] = []
        labels: list[int] = []
        for number, line in enumerate(annotations.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2 or fields[1] not in index:
                raise UserError(f"{annotations}:{number}: expected '<file> <wnid> ...' with a wnid of wnids.txt")
            path = self.folder / "val" / "images" / fields[0]
            if not path.is_file():
                raise UserError(f"{path} (listed in {annotations}:{number}) not found")
            paths.append(path)
            labels.append(index[fields[1]])
        if not paths:
            raise UserError(f"{annotations} lists no image")
        return paths, labels


def _check_cache(data: object) -> None:
    """Raise ValueError unless `data` is a cache this version wrote (so a stale one gets rebuilt)."""
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        raise ValueError(f"not a version-{CACHE_VERSION} cache")
    for split in ("train", "test"):
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(f"malformed {split} tensors")
