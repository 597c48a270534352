"""Any image classification data laid out ImageFolder-style, decoded once into uint8 tensors.

    <root>/train/<class>/*.png     required
    <root>/test/<class>/*.jpg      required, same class folders as train
    <root>/val/<class>/*           optional; without it `val_fraction` of train is carved off

Classes are the sorted folder names (so label indices do not depend on the file system's listing
order). Every image is converted to `channels` (1 or 3) and resized to `size`, whatever its original
size, because the in-memory design needs one (N, C, H, W) tensor. Files whose extension is not an
image's are skipped with one warning naming them (a stray README or thumbnail database should not stop
a run); a class folder with no image, or an image that cannot be decoded, is an error naming it.

`decode_images` is shared with Tiny ImageNet.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from adv_smooth.data.base import ImageDataModule, Split, Splits
from adv_smooth.utils.errors import UserError, require

# torchvision's IMG_EXTENSIONS: what PIL decodes and ImageFolder accepts.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_MODES = {1: "L", 3: "RGB"}


def _read_image(path: Path, size: tuple[int, int], mode: str) -> np.ndarray:
    """One image as an (H, W) or (H, W, 3) uint8 array; a damaged file is a `UserError` naming it."""
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if img.size != (size[1], size[0]):  # PIL sizes are (width, height)
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        # UnidentifiedImageError and "image file is truncated" are OSErrors.
        raise UserError(f"cannot read image {path}: {' '.join(str(err).split())}") from err


def decode_images(paths: Sequence[Path], size: tuple[int, int], channels: int = 3) -> Tensor:
    """Decode image files into one uint8 (N, channels, H, W) tensor, resizing where needed.

    Threads rather than processes: PIL releases the GIL while decoding, and each result is written
    straight into one preallocated array, so there is no pickling or per-image tensor.
    """
    h, w = size
    out = np.empty((len(paths), h, w, channels), dtype=np.uint8)
    mode = _MODES[channels]

    def fill(i: int) -> None:
        out[i] = _read_image(paths[i], size, mode).reshape(h, w, channels)

    if len(paths) > 0:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for _ in pool.map(fill, range(len(paths))):  # iterate to re-raise the first error
                pass
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def scan_split(folder: Path) -> dict[str, list[Path]]:
    """Class name -> sorted image files under `folder/<class>/` (recursively, like ImageFolder).

    Hidden files (`.DS_Store`, ...) are ignored silently; other non-image files are skipped with one
    warning; a class without a single image raises, since it would be a class the model never sees. A
    folder that cannot be listed (no permission) is a `UserError` naming it, never silently skipped.
    """
    if not folder.is_dir():
        raise UserError(f"{folder} not found: dataset=folder expects <root>/train/<class>/ and <root>/test/<class>/")
    try:
        return _scan(folder)
    except OSError as err:
        where = err.filename or folder
        raise UserError(f"cannot read {where}: {err.strerror or ' '.join(str(err).split())}") from err


def _raise(err: OSError) -> None:
    raise err


def _scan(folder: Path) -> dict[str, list[Path]]:
    """`scan_split` itself; listing errors propagate (`os.walk` would drop an unreadable folder silently)."""
    files: dict[str, list[Path]] = {}
    skipped: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.append(entry)
            continue
        images = []
        for dirpath, dirnames, filenames in os.walk(entry, onerror=_raise, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                (images if path.suffix.lower() in IMAGE_EXTENSIONS else skipped).append(path)
        if not images:
            raise UserError(f"class folder {entry} contains no image ({', '.join(IMAGE_EXTENSIONS)})")
        files[entry.name] = images
    if skipped:
        shown = ", ".join(str(p) for p in skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        warnings.warn(f"skipping {len(skipped)} non-image file(s) under {folder}: {shown}", UserWarning, stacklevel=4)
    if not files:
        raise UserError(f"{folder} has no class folders: expected {folder}/<class>/<images>")
    return files


class FolderDataModule(ImageDataModule):
    """ImageFolder-style data at `root` (which is the dataset folder itself, not a parent)."""

    def __init__(
        self,
        root: str | Path | None = None,
        size: int | Sequence[int] = 32,
        channels: int = 3,
        **kwargs,
    ) -> None:
        require(
            root is not None and str(root) != "",
            "dataset.root",
            root,
            "the folder holding train/<class>/ and test/<class>/ (dataset=folder has no default)",
        )
        sizes = (size, size) if isinstance(size, int) else tuple(size)
        require(
            len(sizes) == 2 and all(isinstance(s, int) and s >= 1 for s in sizes),
            "dataset.size",
            size,
            "a positive integer or [height, width]",
        )
        require(channels in _MODES, "dataset.channels", channels, "1 (grayscale) or 3 (RGB)")
        super().__init__(root=root, **kwargs)
        self.size: tuple[int, int] = sizes  # type: ignore[assignment]
        self.channels_wanted = channels

    def load_splits(self) -> Splits:
        if not self.root.is_dir():
            raise UserError(f"dataset.root={str(self.root)!r} is not a folder: point it at a folder with train/, test/")
        train_files = scan_split(self.root / "train")
        classes = sorted(train_files)
        test_files = self._matching(self.root / "test", classes)
        val_dir = self.root / "val"
        val_files = self._matching(val_dir, classes) if val_dir.is_dir() else None
        return Splits(
            train=self._decode(train_files, classes),
            test=self._decode(test_files, classes),
            val=None if val_files is None else self._decode(val_files, classes),
            classes=classes,
        )

    @staticmethod
    def _matching(folder: Path, classes: list[str]) -> dict[str, list[Path]]:
        """Scan `folder` and insist on exactly the training classes, so label indices agree."""
        files = scan_split(folder)
        if sorted(files) != classes:
            missing, extra = sorted(set(classes) - set(files)), sorted(set(files) - set(classes))
            raise UserError(
                f"class folders of {folder} differ from train/: "
                f"missing {missing or 'none'}, unexpected {extra or 'none'}"
            )
        return files

    def _decode(self, files: dict[str, list[Path]], classes: list[str]) -> Split:
        paths = [p for c in classes for p in files[c]]
        labels = torch.tensor([i for i, c in enumerate(classes) for _ in files[c]], dtype=torch.int64)
        return decode_images(paths, self.size, self.channels_wanted), labels
