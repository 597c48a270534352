"""pytest fixtures for the data tests: no network, trusted checksums, ready-made dataset roots.

The writers themselves live in `data_fixtures.py` (importable by the test modules; one per format).
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import torchvision.datasets.cifar as tv_cifar
import torchvision.datasets.svhn as tv_svhn
from data_fixtures import write_cifar, write_image_folder, write_svhn, write_tiny_imagenet
from torchvision.datasets import utils as tv_utils


# -- pytest fixtures ------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must never download: any attempt fails loudly instead of reaching the network."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to download: {args}")

    monkeypatch.setattr(tv_utils, "_urlretrieve", refuse)
    monkeypatch.setattr(tv_utils, "_download_file_from_remote_location", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def trust_checksums(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixture files cannot match the real MD5s: patch only torchvision's checksum comparison."""
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    monkeypatch.setattr(tv_svhn, "check_integrity", lambda *args, **kwargs: True)


@pytest.fixture
def cifar10_root(tmp_path: Path, trust_checksums: None) -> tuple[Path, dict]:
    """A CIFAR-10 fixture: 20 train images (labels cycling 0..9), 10 test images."""
    root = tmp_path / "data"
    written = write_cifar(root, "cifar10", [i % 10 for i in range(20)], [(3 * i) % 10 for i in range(10)])
    return root, written


@pytest.fixture
def svhn_root(tmp_path: Path, trust_checksums: None) -> tuple[Path, dict]:
    """An SVHN fixture under root/svhn: 12 train, 6 test, 9 extra images; digit 0 included."""
    root = tmp_path / "data"
    labels = {"train": [i % 10 for i in range(12)], "test": [0, 1, 2, 3, 4, 5], "extra": [9, 8, 7, 6, 5, 4, 3, 2, 1]}
    images = {}
    start = 0
    for split, labs in labels.items():
        images[split] = write_svhn(root / "svhn", split, labs, start=start)
        start += len(labs)
    return root, {"labels": labels, "images": images}


@pytest.fixture
def tiny_root(tmp_path: Path) -> tuple[Path, dict]:
    """A Tiny ImageNet fixture: 3 classes (unsorted in wnids.txt), 4 train images each, 5 val images."""
    root = tmp_path / "data"
    wnids = ["n0003", "n0001", "n0002"]
    val_wnids = ["n0002", "n0001", "n0003", "n0003", "n0001"]
    written = write_tiny_imagenet(root, wnids, n_train=4, val_wnids=val_wnids)
    return root, {**written, "val_wnids": val_wnids, "n_train": 4}


@pytest.fixture
def folder_root(tmp_path: Path) -> tuple[Path, dict]:
    """An ImageFolder fixture with mixed image sizes: 3 classes, 3 train / 2 test images each."""
    root = tmp_path / "images"
    counts = {
        "train": {"cat": 3, "ant": 3, "bee": 3},
        "test": {"cat": 2, "ant": 2, "bee": 2},
    }
    written = write_image_folder(root, counts, sizes=[(32, 32), (40, 24), (17, 50)])
    return root, {**written, "counts": counts}
