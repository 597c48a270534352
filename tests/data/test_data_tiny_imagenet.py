"""Tiny ImageNet on a fixture tree in the official layout: decoding, val annotations, cache, archive."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from data_fixtures import JPEG_STEP, decode_label, zip_tree
from torchvision.datasets import utils as tv_utils

from adv_smooth.data import tiny_imagenet
from adv_smooth.data.tiny_imagenet import TinyImageNetDataModule
from adv_smooth.utils.errors import UserError


def _module(root: Path, **kwargs) -> TinyImageNetDataModule:
    return TinyImageNetDataModule(root=root, download=False, **kwargs)


def test_decodes_tree_with_val_annotations_as_test(tiny_root: tuple[Path, dict]) -> None:
    root, info = tiny_root
    dm = _module(root, val_fraction=0.0)
    dm.setup()
    train_x, train_y = dm.splits.train
    test_x, test_y = dm.splits.test
    assert dm.classes == ["n0001", "n0002", "n0003"]  # sorted, not wnids.txt order
    assert train_x.shape == (12, 3, 64, 64) and train_x.dtype == torch.uint8 and train_y.dtype == torch.int64
    assert test_x.shape == (5, 3, 64, 64)  # official val images; the unlabelled test image is not read
    assert [decode_label(img, JPEG_STEP) for img in train_x] == train_y.tolist()
    assert train_y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    expected_test = [dm.classes.index(w) for w in info["val_wnids"]]
    assert test_y.tolist() == expected_test == [decode_label(img, JPEG_STEP) for img in test_x]
    assert dm.image_size == (64, 64) and dm.crop_padding == 8


def test_grayscale_jpeg_becomes_rgb(tiny_root: tuple[Path, dict]) -> None:
    root, _ = tiny_root
    dm = _module(root, val_fraction=0.0)
    dm.setup()
    gray = dm.splits.train[0][8]  # n0003 is first in wnids.txt: its image 0 was saved grayscale
    assert gray.shape == (3, 64, 64)
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_imagenet_mean_std_by_default_and_normalize_false_wins(tiny_root: tuple[Path, dict]) -> None:
    root, _ = tiny_root
    assert _module(root).mean == (0.485, 0.456, 0.406) and _module(root).std == (0.229, 0.224, 0.225)
    assert _module(root, normalize=False).mean == (0.0, 0.0, 0.0)


def test_cache_is_written_then_reused(tiny_root: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    root, info = tiny_root
    first = _module(root, val_fraction=0.0)
    first.setup()
    cache = info["folder"] / "cache_uint8.pt"
    assert cache.is_file()
    assert not list(info["folder"].glob(".cache-*"))  # the temporary file was renamed away

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded JPEGs again despite the cache")

    monkeypatch.setattr(tiny_imagenet, "decode_images", must_not_decode)
    second = _module(root, val_fraction=0.0)
    second.setup()
    assert torch.equal(first.splits.train[0], second.splits.train[0])
    assert torch.equal(first.splits.test[1], second.splits.test[1])
    assert second.classes == first.classes


def test_damaged_cache_is_rebuilt_with_a_warning(tiny_root: tuple[Path, dict]) -> None:
    root, info = tiny_root
    _module(root).setup()
    cache = info["folder"] / "cache_uint8.pt"
    cache.write_bytes(cache.read_bytes()[:100])
    with pytest.warns(UserWarning, match="cache_uint8.pt"):
        dm = _module(root, val_fraction=0.0)
        dm.setup()
    assert dm.splits.train[0].shape == (12, 3, 64, 64)
    assert torch.load(cache, weights_only=True)["train_images"].shape == (12, 3, 64, 64)


def test_missing_data_names_path_and_cure(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        _module(tmp_path).setup()
    message = str(info.value)
    assert str(tmp_path / "tiny-imagenet-200.zip") in message and "set download=true" in message
    assert tiny_imagenet.URL in message and "\n" not in message


def test_corrupt_jpeg_names_the_file(tiny_root: tuple[Path, dict]) -> None:
    root, info = tiny_root
    bad = info["folder"] / "train" / "n0002" / "images" / "n0002_1.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(UserError) as err:
        _module(root).setup()
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    assert not (info["folder"] / "cache_uint8.pt").exists()


def test_annotation_with_unknown_wnid_is_a_user_error(tiny_root: tuple[Path, dict]) -> None:
    root, info = tiny_root
    annotations = info["folder"] / "val" / "val_annotations.txt"
    annotations.write_text(annotations.read_text() + "val_0.JPEG\tn9999\t0\t0\t1\t1\n")
    with pytest.raises(UserError, match="val_annotations.txt:6"):
        _module(root).setup()


def test_zip_in_root_is_verified_and_extracted(
    tiny_root: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, info = tiny_root
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    zip_path = zip_tree(info["folder"], fresh / "tiny-imagenet-200.zip")
    with pytest.raises(UserError, match="tiny-imagenet-200.zip is corrupted"):  # not the official MD5
        _module(fresh).setup()
    assert not (fresh / "tiny-imagenet-200").exists()
    monkeypatch.setattr(tiny_imagenet, "MD5", tv_utils.calculate_md5(str(zip_path)))  # our fixture's archive
    dm = _module(fresh, val_fraction=0.0)
    dm.setup()
    assert (fresh / "tiny-imagenet-200" / "wnids.txt").is_file()
    assert dm.splits.train[0].shape == (12, 3, 64, 64) and len(dm.splits.test[1]) == 5


def test_zip_slip_archive_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zip_path = tmp_path / "data" / "tiny-imagenet-200.zip"
    zip_path.parent.mkdir()
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("tiny-imagenet-200/wnids.txt", "n0001\n")
        zf.writestr("../outside.txt", "gotcha")
    monkeypatch.setattr(tiny_imagenet, "MD5", tv_utils.calculate_md5(str(zip_path)))
    with pytest.raises(UserError, match="'../outside.txt'"):
        _module(tmp_path / "data").setup()
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "data" / "tiny-imagenet-200").exists()


def test_download_fetches_the_official_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(tv_utils, "download_url", lambda *args: calls.append(args))  # recorded, never fetched
    with pytest.raises(UserError):  # the fake download produced no file
        TinyImageNetDataModule(root=tmp_path, download=True).setup()
    assert calls == [(tiny_imagenet.URL, str(tmp_path), "tiny-imagenet-200.zip", tiny_imagenet.MD5)]


def test_unwritable_cache_only_warns(tiny_root: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    root, info = tiny_root

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.warns(UserWarning, match="could not write .*cache_uint8.pt"):
        dm = _module(root, val_fraction=0.0)
        dm.setup()
    assert dm.splits.train[0].shape == (12, 3, 64, 64)
    assert not list(info["folder"].glob("*.pt*")) and not list(info["folder"].glob(".cache-*"))
