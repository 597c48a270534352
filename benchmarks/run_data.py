"""Data `benchmarks/run.py` generates: an ImageFolder of PNGs and a Tiny ImageNet tree, in their real layouts.

The images are class-coloured noise (a per-class mean colour plus noise), so a network learns them and a
benchmark's accuracies mean something; their decoding costs what real files of that size and format cost.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CLASSES = 10


def _image(rng: np.random.Generator, label: int, size: int, classes: int) -> Image.Image:
    hue = np.array([np.cos(2 * np.pi * label / classes), np.sin(2 * np.pi * label / classes), label / classes])
    mean = 127 + 60 * hue
    pixels = rng.normal(mean, 50, size=(size, size, 3)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def make_folder(root: Path, train: int, test: int, size: int = 32, seed: int = 0) -> Path:
    """`root/{train,test}/<class>/*.png`: `train` and `test` images over `CLASSES` classes."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("test", test)):
        for i in range(n):
            label = i % CLASSES
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            _image(rng, label, size, CLASSES).save(folder / f"{i:05d}.png")
    return root


def make_tiny_imagenet(root: Path, per_class: int, classes: int = 200, val_per_class: int = 1, seed: int = 0) -> Path:
    """`root/tiny-imagenet-200/` as the official zip extracts it: wnids.txt, train/<wnid>/images/*.JPEG,
    val/images/*.JPEG with val/val_annotations.txt (64x64 JPEGs)."""
    rng = np.random.default_rng(seed)
    folder = root / "tiny-imagenet-200"
    wnids = [f"n{10_000_000 + c:08d}" for c in range(classes)]
    (folder / "val" / "images").mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    annotations = []
    for c, wnid in enumerate(wnids):
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            _image(rng, c, 64, classes).save(images / f"{wnid}_{i}.JPEG", quality=90)
        for i in range(val_per_class):
            name = f"val_{c * val_per_class + i}.JPEG"
            _image(rng, c, 64, classes).save(folder / "val" / "images" / name, quality=90)
            annotations.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    return root


def time_tiny_imagenet(root: Path) -> dict[str, Any]:
    """Seconds of the project's loader on a tree without its cache (decode + cache write), then with it."""
    from adv_smooth.data.tiny_imagenet import TinyImageNetDataModule

    (root / "tiny-imagenet-200" / "cache_uint8.pt").unlink(missing_ok=True)
    out: dict[str, Any] = {}
    for key in ("first_s", "cached_s"):
        start = time.perf_counter()
        splits = TinyImageNetDataModule(root=root, download=False).load_splits()
        out[key] = time.perf_counter() - start
    out["jpegs"] = len(splits.train[1]) + len(splits.test[1])
    return out
