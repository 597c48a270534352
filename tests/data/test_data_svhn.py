"""SVHN on fixture .mat files (scipy.io.savemat, SVHN's real X/y layout and its label 10 for 0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import decode_label

from adv_smooth.data.svhn import SvhnDataModule
from adv_smooth.utils.errors import UserError


def test_train_test_shapes_and_label_10_is_digit_0(svhn_root: tuple[Path, dict]) -> None:
    root, written = svhn_root
    dm = SvhnDataModule(root=root, download=False, val_fraction=0.25)
    dm.setup()
    (train_x, train_y), (val_x, _), (test_x, test_y) = dm.splits.train, dm.splits.val, dm.splits.test
    assert train_x.dtype == torch.uint8 and test_y.dtype == torch.int64
    assert train_x.shape == (9, 3, 32, 32) and val_x.shape == (3, 3, 32, 32) and test_x.shape == (6, 3, 32, 32)
    assert test_y.tolist() == written["labels"]["test"] == [decode_label(img) for img in test_x]
    assert test_y.min() == 0 and test_y.max() <= 9  # 10 in the file became 0
    assert np.array_equal(test_x.numpy(), written["images"]["test"])  # (H,W,C,N) -> (N,C,H,W), in order
    assert [decode_label(img) for img in train_x] == train_y.tolist()
    assert dm.classes == [str(d) for d in range(10)]


def test_report_defaults_no_normalization_no_flip(svhn_root: tuple[Path, dict]) -> None:
    root, _ = svhn_root
    dm = SvhnDataModule(root=root, download=False)
    assert dm.flip is False and dm.normalize is False
    assert dm.mean == (0.0, 0.0, 0.0) and dm.std == (1.0, 1.0, 1.0)


def test_extra_split_arithmetic(svhn_root: tuple[Path, dict]) -> None:
    """extra[:n] is the validation split, train + extra[n:] the training split; nothing carved off."""
    root, written = svhn_root
    dm = SvhnDataModule(root=root, download=False, extra=True, extra_val_size=4, val_fraction=0.5)
    dm.setup()
    labels, images = written["labels"], written["images"]
    assert dm.splits.val[1].tolist() == labels["extra"][:4]
    assert np.array_equal(dm.splits.val[0].numpy(), images["extra"][:4])
    assert dm.splits.train[1].tolist() == labels["train"] + labels["extra"][4:]
    assert np.array_equal(dm.splits.train[0].numpy(), np.concatenate([images["train"], images["extra"][4:]]))
    assert len(dm.splits.train[1]) == 12 + 9 - 4 and len(dm.splits.test[1]) == 6


def test_extra_val_size_larger_than_extra_is_a_user_error(svhn_root: tuple[Path, dict]) -> None:
    root, _ = svhn_root
    with pytest.raises(UserError, match="^extra_val_size=9 is invalid"):
        SvhnDataModule(root=root, download=False, extra=True, extra_val_size=9).setup()


def test_missing_split_names_path_and_cure(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        SvhnDataModule(root=tmp_path, download=False).setup()
    message = str(info.value)
    assert str(tmp_path / "svhn" / "train_32x32.mat") in message and "set download=true" in message
    assert "\n" not in message


def test_missing_extra_is_reported_when_asked_for(svhn_root: tuple[Path, dict]) -> None:
    root, _ = svhn_root
    (root / "svhn" / "extra_32x32.mat").unlink()
    SvhnDataModule(root=root, download=False).setup()  # not needed without extra
    with pytest.raises(UserError, match="extra_32x32.mat is missing"):
        SvhnDataModule(root=root, download=False, extra=True).setup()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_mat_names_the_file(svhn_root: tuple[Path, dict], damage: str) -> None:
    root, _ = svhn_root
    bad = root / "svhn" / "test_32x32.mat"
    blob = bad.read_bytes()
    bad.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else b"MATLAB? no." * 20)
    with pytest.raises(UserError) as info:
        SvhnDataModule(root=root, download=False).setup()
    message = str(info.value)
    assert str(bad) in message and "corrupted" in message and "\n" not in message


def test_checksum_mismatch_names_the_file(svhn_root: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.svhn as tv_svhn

    root, _ = svhn_root
    monkeypatch.setattr(tv_svhn, "check_integrity", lambda *args, **kwargs: False)  # the real verdict
    with pytest.raises(UserError, match="train_32x32.mat is corrupted \\(checksum mismatch\\)"):
        SvhnDataModule(root=root, download=False).setup()
