"""The ImageFolder-style dataset: discovery, resizing, label order, and every error/warning path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from data_fixtures import JPEG_STEP, decode_label, write_image_folder

from adv_smooth.data.folder import FolderDataModule
from adv_smooth.utils.errors import UserError


def test_loads_resizes_and_labels_by_sorted_class_names(folder_root: tuple[Path, dict]) -> None:
    root, info = folder_root
    dm = FolderDataModule(root=root, size=24, val_fraction=0.0)
    dm.setup()
    assert dm.classes == ["ant", "bee", "cat"] == info["classes"]
    train_x, train_y = dm.splits.train
    assert train_x.shape == (9, 3, 24, 24) and train_x.dtype == torch.uint8 and train_y.dtype == torch.int64
    assert train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [decode_label(img, JPEG_STEP) for img in train_x] == train_y.tolist()
    test_x, test_y = dm.splits.test
    assert test_x.shape == (6, 3, 24, 24) and [decode_label(img, JPEG_STEP) for img in test_x] == test_y.tolist()
    assert len(dm.splits.val[1]) == 0  # no val/ folder and val_fraction=0


def test_rectangular_size_grayscale_and_val_folder(tmp_path: Path) -> None:
    counts = {"train": {"a": 4, "b": 4}, "val": {"a": 1, "b": 2}, "test": {"a": 1, "b": 1}}
    write_image_folder(tmp_path, counts, sizes=[(30, 30)], ext=".jpg")
    dm = FolderDataModule(root=tmp_path, size=[16, 20], channels=1, val_fraction=0.5)
    dm.setup()
    assert dm.splits.train[0].shape == (8, 1, 16, 20)  # the val/ folder is used, nothing carved off
    assert dm.splits.val[1].tolist() == [0, 1, 1]
    assert dm.channels == 1 and dm.image_size == (16, 20) and len(dm.mean) == 1


def test_non_image_files_are_skipped_with_a_warning(folder_root: tuple[Path, dict]) -> None:
    root, _ = folder_root
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"\0")  # hidden: skipped silently
    (root / "train" / "README.md").write_text("top-level file")
    dm = FolderDataModule(root=root, val_fraction=0.0)
    with pytest.warns(UserWarning) as record:
        dm.setup()
    messages = [str(w.message) for w in record]
    assert len(messages) == 1
    assert str(root / "train" / "cat" / "notes.txt") in messages[0] and "README.md" in messages[0]
    assert ".DS_Store" not in messages[0]
    assert len(dm.splits.train[1]) == 9


def test_empty_class_folder_is_an_error_naming_it(folder_root: tuple[Path, dict]) -> None:
    root, _ = folder_root
    (root / "train" / "dog").mkdir()
    (root / "train" / "dog" / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match=f"class folder {root / 'train' / 'dog'} contains no image"):
        FolderDataModule(root=root).setup()


def test_test_classes_must_match_train(folder_root: tuple[Path, dict]) -> None:
    root, _ = folder_root
    shutil.rmtree(root / "test" / "bee")
    shutil.copytree(root / "test" / "ant", root / "test" / "wasp")
    with pytest.raises(UserError) as info:
        FolderDataModule(root=root).setup()
    message = str(info.value)
    assert str(root / "test") in message and "['bee']" in message and "['wasp']" in message
    assert "\n" not in message


def test_corrupt_image_is_an_error_naming_the_file(folder_root: tuple[Path, dict]) -> None:
    root, _ = folder_root
    bad = root / "train" / "bee" / "1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UserError, match=f"cannot read image {bad}"):
        FolderDataModule(root=root).setup()


def test_missing_root_or_split_folders(tmp_path: Path, folder_root: tuple[Path, dict]) -> None:
    with pytest.raises(UserError, match="dataset.root=None is invalid"):
        FolderDataModule(root=None)
    with pytest.raises(UserError, match="is not a folder"):
        FolderDataModule(root=tmp_path / "nope").setup()
    root, _ = folder_root
    shutil.rmtree(root / "test")
    with pytest.raises(UserError, match=f"{root / 'test'} not found"):
        FolderDataModule(root=root).setup()


@pytest.mark.parametrize(("key", "value"), [("size", 0), ("size", [1, 2, 3]), ("channels", 2)])
def test_invalid_options(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(UserError, match=f"dataset.{key}="):
        FolderDataModule(root=tmp_path, **{key: value})
