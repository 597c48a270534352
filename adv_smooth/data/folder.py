"""Any image classification data laid out ImageFolder-style, decoded once into uint8 tensors.

    <root>/train/<class>/*.png     required
    <root>/test/<class>/*.jpg      required, same class folders as train
    <root>/val/<class>/*           optional; without it `val_fraction` of train is carved off

Classes are the sorted folder names (so label indices do not depend on the file system's listing
order). Every image is converted to `channels` (1 or 3) and resized to `size`, whatever its original
size, because the in-memory design needs one (N, C, H, W) tensor. Files whose extension is not an
image's are skipped with one warning naming them (a stray README or thumbnail database should not stop
a run); a class folder with no image, or an image that cannot be decoded, is an error naming it.

Symbolic links are followed only while they stay under the root: a link that leads out of it (`train/etc ->
/etc`, `train/a/x.png -> ~/secret.png`) is an error naming the link, so the data a run reads is the data
under the folder it names, and a folder reached twice (a link back to a parent) is refused instead of
looping. A dataset needs at least two classes: with one, every prediction is right and the run "succeeds"
at 100 % while measuring nothing. Decoding (16-bit images included) is `decode.py`, shared with Tiny ImageNet.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from adv_smooth.data.base import ImageDataModule, Split, Splits
from adv_smooth.data.decode import IMAGE_EXTENSIONS, MODES, decode_images
from adv_smooth.utils.errors import UserError, require


class _Boundary:
    """Keeps one split's scan under the dataset root: every folder it enters and every linked file must really be
    there (`os.path.realpath`), and each real folder is entered once, so a link back to a parent cannot loop."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self.entered: dict[Path, Path] = {}

    def check(self, path: Path) -> None:
        """Refuse `path` when it leads out of the root (only a symbolic link on the way can make it)."""
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.root):
            raise UserError(
                f"{path} is a symbolic link to {real}, outside root={str(self.root)!r}: a folder dataset "
                "reads only what is under its root (copy the files in, or use a root that holds them)"
            )

    def enter(self, folder: Path) -> None:
        self.check(folder)
        real = Path(os.path.realpath(folder))
        if real in self.entered:  # name the link of the two (a loop's link is always the later one)
            first = self.entered[real]
            link, other = (first, folder) if first.is_symlink() and not folder.is_symlink() else (folder, first)
            raise UserError(
                f"{link} leads to {real}, which the scan also reaches as {other}: a symbolic link loop or a folder "
                "linked twice would read the same images again (remove the link)"
            )
        self.entered[real] = folder


def scan_split(folder: Path, root: Path | None = None) -> dict[str, list[Path]]:
    """Class name -> sorted image files under `folder/<class>/` (recursively, like ImageFolder).

    Hidden files (`.DS_Store`, ...) are ignored silently; other non-image files are skipped with one
    warning; a class without a single image raises, since it would be a class the model never sees. A
    folder that cannot be listed (no permission) is a `UserError` naming it, never silently skipped.
    Symbolic links are followed only inside `root` (by default `folder`'s parent, the dataset root).
    """
    if not folder.is_dir():
        raise UserError(f"{folder} not found: dataset=folder expects <root>/train/<class>/ and <root>/test/<class>/")
    boundary = _Boundary(folder.parent if root is None else root)
    boundary.enter(folder)
    try:
        return _scan(folder, boundary)
    except OSError as err:
        where = err.filename or folder
        raise UserError(f"cannot read {where}: {err.strerror or ' '.join(str(err).split())}") from err


def _raise(err: OSError) -> None:
    raise err


def _scan(folder: Path, boundary: _Boundary) -> dict[str, list[Path]]:
    """`scan_split` itself; listing errors propagate (`os.walk` would drop an unreadable folder silently)."""
    files: dict[str, list[Path]] = {}
    skipped: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.append(entry)
            continue
        boundary.enter(entry)
        images = []
        for dirpath, dirnames, filenames in os.walk(entry, onerror=_raise, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in dirnames:
                boundary.enter(Path(dirpath) / name)
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    skipped.append(path)
                    continue
                if path.is_symlink():  # a plain file inside an entered folder is inside the root
                    boundary.check(path)
                images.append(path)
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
    """ImageFolder-style data at `root` (which is the dataset folder itself, not a parent).

    Args:
        root: the dataset folder holding train/<class>/ and test/<class>/ (and optionally val/<class>/).
        size: the side (or [height, width]) in pixels every image is resized to.
        channels: 1 (grayscale) or 3 (RGB): the images are converted to it.
    """

    @classmethod
    def ships_val_split(cls, options: Mapping[str, Any]) -> bool:
        """A `val/` folder under `root` is the validation split."""
        root = options.get("root")
        return bool(root) and (Path(str(root)).expanduser() / "val").is_dir()

    def __init__(
        self,
        root: str | Path | None = None,
        size: int | Sequence[int] = 32,
        channels: int = 3,
        **kwargs,
    ) -> None:
        require(
            root is not None and str(root) != "",
            "root",
            root,
            "the folder holding train/<class>/ and test/<class>/ (dataset=folder has no default)",
        )
        sizes = (size, size) if isinstance(size, int) else tuple(size)
        require(
            len(sizes) == 2 and all(isinstance(s, int) and s >= 1 for s in sizes),
            "size",
            size,
            "a positive integer or [height, width]",
        )
        require(channels in MODES, "channels", channels, "1 (grayscale) or 3 (RGB)")
        super().__init__(root=root, **kwargs)
        self.size: tuple[int, int] = sizes  # type: ignore[assignment]
        self.channels_wanted = channels

    def load_splits(self) -> Splits:
        if not self.root.is_dir():
            raise UserError(f"root={str(self.root)!r} is not a folder: point it at a folder with train/, test/")
        train_files = scan_split(self.root / "train", self.root)
        classes = sorted(train_files)
        if len(classes) < 2:  # every prediction would be right: a 100 % that measures nothing
            raise UserError(
                f"{self.root / 'train'} has 1 class folder ({classes[0]!r}): a classifier needs at least 2, "
                "one folder of images per class under train/ and test/"
            )
        test_files = self._matching(self.root / "test", classes, self.root)
        val_dir = self.root / "val"
        val_files = self._matching(val_dir, classes, self.root) if val_dir.is_dir() else None
        return Splits(
            train=self._decode(train_files, classes),
            test=self._decode(test_files, classes),
            val=None if val_files is None else self._decode(val_files, classes),
            classes=classes,
        )

    @staticmethod
    def _matching(folder: Path, classes: list[str], root: Path) -> dict[str, list[Path]]:
        """Scan `folder` and insist on exactly the training classes, so label indices agree."""
        files = scan_split(folder, root)
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
