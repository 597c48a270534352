"""Decoding image files: 16-bit images are scaled to 8 bits, not clipped to white (issue 26, item 3).

Every file is written by PIL in the exact on-disk format the case is about (a 16-bit greyscale PNG, TIFF
and PGM), and the test checks the header says so, so the real decoder runs on a real file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import write_image_folder
from PIL import Image

from adv_smooth.data.decode import decode_images
from adv_smooth.data.folder import FolderDataModule
from adv_smooth.utils.errors import UserError

# The image: mean 31177 / 65535, which PIL's convert("L") clipped to about 254.
SIXTEEN_BIT = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 62354 // 1023).astype(np.uint16)


def _write_16bit(path: Path, pixels: np.ndarray = SIXTEEN_BIT) -> Path:
    """A 16-bit greyscale file as PIL writes it (mode I;16), its bit depth checked in the header."""
    Image.fromarray(pixels).save(path)
    raw = path.read_bytes()
    if path.suffix == ".png":
        assert raw[24] == 16 and raw[25] == 0  # IHDR: bit depth 16, colour type 0 (greyscale)
    elif path.suffix == ".pgm":
        assert raw.split(b"\n")[2] == b"65535"  # maxval: two bytes per sample
    else:
        with Image.open(path) as img:
            assert img.tag_v2[258] == (16,)  # TIFF BitsPerSample
    return path


def _expected(pixels: np.ndarray) -> np.ndarray:
    return np.round(pixels.astype(np.float64) * 255 / 65535).astype(np.uint8)


@pytest.mark.parametrize("ext", [".png", ".tif", ".pgm"])
@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_greyscale_is_scaled_not_saturated(tmp_path: Path, ext: str, channels: int) -> None:
    path = _write_16bit(tmp_path / f"deep{ext}")
    assert abs(SIXTEEN_BIT.mean() - 31177) < 1
    decoded = decode_images([path], (32, 32), channels=channels)[0].numpy()
    assert decoded.shape == (channels, 32, 32)
    for channel in decoded:
        np.testing.assert_array_equal(channel, _expected(SIXTEEN_BIT))
    assert abs(decoded.mean() - 31177 / 65535 * 255) < 0.5  # ~121, not ~254


def test_16bit_extremes_map_to_0_and_255(tmp_path: Path) -> None:
    pixels = np.array([[0, 1, 128, 129, 32767, 32768, 65534, 65535]], dtype=np.uint16).repeat(8, axis=0)
    path = _write_16bit(tmp_path / "edges.png", pixels)
    decoded = decode_images([path], (8, 8), channels=1)[0, 0, 0].tolist()
    assert decoded == [0, 0, 0, 1, 127, 128, 255, 255]


def test_a_16bit_folder_dataset_loads_its_real_brightness(tmp_path: Path) -> None:
    """The reproduction: a folder dataset of 16-bit PNGs, mean 31177/65535, decoded through the data module."""
    write_image_folder(tmp_path, {"train": {"a": 2, "b": 2}, "test": {"a": 1, "b": 1}})
    for png in tmp_path.rglob("*.png"):
        _write_16bit(png)
    dm = FolderDataModule(root=tmp_path, val_fraction=0.0)
    dm.setup()
    images = dm.splits.train[0]
    assert abs(images.double().mean().item() - 31177 / 65535 * 255) < 0.5


def test_8bit_images_are_unchanged(tmp_path: Path) -> None:
    pixels = (np.arange(16 * 16).reshape(16, 16) % 256).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "plain.png")
    np.testing.assert_array_equal(decode_images([tmp_path / "plain.png"], (16, 16), channels=1)[0, 0].numpy(), pixels)


@pytest.mark.parametrize(
    ("array", "kind"),
    [(np.full((8, 8), 0.5, np.float32), "floating-point"), (np.full((8, 8), 70000, np.int32), "32-bit integer")],
    ids=["float", "int32"],
)
def test_32bit_samples_are_refused_naming_the_file(tmp_path: Path, array: np.ndarray, kind: str) -> None:
    """No stated range: clipping (what PIL does) would turn a float image in [0, 1] black; refused by name."""
    path = tmp_path / "wide.tif"
    Image.fromarray(array).save(path)
    with pytest.raises(UserError) as info:
        decode_images([path], (8, 8), channels=3)
    message = str(info.value)
    assert message.startswith(f"cannot read image {path}: its {kind} samples") and "8 or 16 bits" in message
    assert "\n" not in message
