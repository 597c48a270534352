"""CIFAR-10/100 on fixture pickle batches in torchvision's real layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import decode_label, write_cifar

from adv_smooth.data import archive
from adv_smooth.data.cifar import CifarDataModule
from adv_smooth.utils.errors import UserError


def test_cifar10_shapes_labels_and_splits(cifar10_root: tuple[Path, dict]) -> None:
    root, written = cifar10_root
    dm = CifarDataModule(root=root, download=False, val_fraction=0.25, split_seed=3)
    dm.setup()
    train_x, train_y = dm.splits.train
    val_x, val_y = dm.splits.val
    test_x, test_y = dm.splits.test
    assert train_x.dtype == torch.uint8 and train_y.dtype == torch.int64
    assert train_x.shape == (15, 3, 32, 32) and val_x.shape == (5, 3, 32, 32) and test_x.shape == (10, 3, 32, 32)
    assert train_x.is_contiguous() and test_x.is_contiguous()
    assert dm.classes == written["classes"] and dm.num_classes == 10
    assert dm.channels == 3 and dm.image_size == (32, 32) and dm.crop_padding == 4
    for x, y in [(train_x, train_y), (val_x, val_y), (test_x, test_y)]:
        assert [decode_label(img) for img in x] == y.tolist()  # every image keeps its own label
    # the test split is the file's content, in order, pixel for pixel
    assert np.array_equal(test_x.numpy(), written["test"][0])
    assert test_y.tolist() == written["test"][1].tolist()
    # train + val together are exactly the training batches
    assert sorted(train_y.tolist() + val_y.tolist()) == sorted(written["train"][1].tolist())


def test_mean_std_match_numpy_on_the_training_images(cifar10_root: tuple[Path, dict]) -> None:
    root, written = cifar10_root
    dm = CifarDataModule(root=root, download=False, val_fraction=0.0)
    x = written["train"][0].astype(np.float64) / 255
    np.testing.assert_allclose(dm.mean, x.mean(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dm.std, x.std(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    assert isinstance(dm.mean, tuple) and len(dm.std) == 3


def test_cifar100_uses_fine_labels(tmp_path: Path, trust_checksums: None) -> None:
    train_labels, test_labels = [0, 17, 99, 42, 5, 63], [99, 0, 50]
    written = write_cifar(tmp_path, "cifar100", train_labels, test_labels)
    dm = CifarDataModule(variant="cifar100", root=tmp_path, download=False, val_fraction=0.0)
    dm.setup()
    assert dm.num_classes == 100 and dm.classes == written["classes"]
    assert dm.splits.train[1].tolist() == train_labels
    assert [decode_label(img) for img in dm.splits.test[0]] == test_labels == dm.splits.test[1].tolist()


def test_unknown_variant_is_rejected() -> None:
    with pytest.raises(UserError, match="^variant='cifar1000'"):
        CifarDataModule(variant="cifar1000")


def test_missing_data_without_download_names_path_and_cure(tmp_path: Path) -> None:
    dm = CifarDataModule(root=tmp_path / "nowhere", download=False)
    with pytest.raises(UserError) as info:
        dm.setup()
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py" / "data_batch_1") in message
    assert "set download=true" in message and "\n" not in message


def test_download_is_attempted_only_when_files_are_missing(
    tmp_path: Path, cifar10_root: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = cifar10_root
    calls: list[tuple] = []
    monkeypatch.setattr(archive, "download_and_extract", lambda *args: calls.append(args))
    CifarDataModule(root=root, download=True).setup()
    assert calls == []
    with pytest.raises(UserError):  # the (fake) download left nothing: diagnosed, not a traceback
        CifarDataModule(root=tmp_path / "empty", download=True).setup()
    assert calls and calls[0][0] == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_batch_names_the_file(cifar10_root: tuple[Path, dict], damage: str) -> None:
    root, written = cifar10_root
    bad = written["folder"] / "data_batch_3"
    blob = bad.read_bytes()
    bad.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else b"not a pickle at all")
    with pytest.raises(UserError) as info:
        CifarDataModule(root=root, download=False).setup()
    message = str(info.value)
    assert str(bad) in message and "corrupted" in message and "\n" not in message


def test_checksum_mismatch_names_the_file(tmp_path: Path) -> None:
    """Without the test-only patch, torchvision's MD5 check refuses the fixture: the first file is named."""
    written = write_cifar(tmp_path, "cifar10", [1, 2, 3, 4, 5], [6])
    with pytest.raises(UserError) as info:
        CifarDataModule(root=tmp_path, download=False).setup()
    assert str(written["folder"] / "data_batch_1") in str(info.value)
    assert "checksum mismatch" in str(info.value)
