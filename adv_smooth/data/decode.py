"""Image files decoded into uint8 arrays: the one place that knows PIL's image modes.

Why a module of its own: the folder dataset and Tiny ImageNet both decode files, and PIL's `convert("L")`
or `convert("RGB")` clips every sample above 255 instead of rescaling it, so a 16-bit greyscale PNG, TIFF
or PGM (PIL mode `I;16*`, or `I` for PGM) would come out nearly white. Such images are scaled from 16 to 8
bits first. 16-bit colour PNGs need nothing: PIL already decodes them to 8 bits per channel. Samples of 32
bits (mode `I` from a TIFF, float mode `F`) have no range a file states, so they are refused by name rather
than guessed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from adv_smooth.utils.errors import UserError

# torchvision's IMG_EXTENSIONS: what PIL decodes and ImageFolder accepts.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MODES = {1: "L", 3: "RGB"}
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_SIXTEEN_BIT_AS_I = ("PNG", "PPM")  # formats whose mode `I` PIL fills with 16-bit samples (PGM scaled to 65535)


def to_8bit(img: Image.Image, path: Path) -> Image.Image:
    """`img` with 8-bit samples: 16-bit greyscale scaled (0 -> 0, 65535 -> 255, rounded), 8-bit modes unchanged."""
    if img.mode in _SIXTEEN_BIT or (img.mode == "I" and img.format in _SIXTEEN_BIT_AS_I):
        wide = np.asarray(img).astype(np.uint32)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), mode="L")
    if img.mode in ("I", "F"):
        kind = "32-bit integer" if img.mode == "I" else "floating-point"
        raise UserError(
            f"cannot read image {path}: its {kind} samples (PIL mode {img.mode!r}) have no stated range; "
            "save it with 8 or 16 bits per sample"
        )
    return img


def read_image(path: Path, size: tuple[int, int], mode: str) -> np.ndarray:
    """One image as an (H, W) or (H, W, 3) uint8 array; a damaged file is a `UserError` naming it."""
    try:
        with Image.open(path) as img:
            img = to_8bit(img, path).convert(mode)
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
    mode = MODES[channels]

    def fill(i: int) -> None:
        out[i] = read_image(paths[i], size, mode).reshape(h, w, channels)

    if len(paths) > 0:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for _ in pool.map(fill, range(len(paths))):  # iterate to re-raise the first error
                pass
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
