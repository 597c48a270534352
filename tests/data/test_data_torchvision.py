"""The generic torchvision module (`dataset=mnist`, `dataset=fashion_mnist`: a YAML each, no Python) on fixture
files in torchvision's real IDX layout, through the composed configs."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from data_fixtures import decode_label, write_mnist

from adv_smooth.data.torchvision_data import TorchvisionDataModule, to_uint8_nchw
from adv_smooth.utils.errors import UserError
from tests.conftest import compose_config


@pytest.mark.parametrize(("option", "name"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_a_yaml_is_all_a_torchvision_dataset_needs(option: str, name: str, tmp_path: Path) -> None:
    written = write_mnist(tmp_path, name, train_labels=[i % 10 for i in range(20)], test_labels=[3, 1, 4, 1, 5, 9])
    cfg = compose_config(
        f"dataset={option}",
        f"dataset.root={tmp_path}",
        "dataset.download=false",
        "dataset.val_fraction=0.25",
        output_dir=tmp_path / "run",
    )
    dm = hydra.utils.instantiate(cfg.dataset)
    dm.prepare_data()
    dm.setup("fit")
    test_x, test_y = dm.splits.test
    assert test_x.dtype == torch.uint8 and test_x.shape == (6, 1, 28, 28) and test_x.is_contiguous()
    assert np.array_equal(test_x[:, 0].numpy(), written["t10k"][0]) and test_y.tolist() == [3, 1, 4, 1, 5, 9]
    assert dm.splits.train[0].shape[0] + dm.splits.val[0].shape[0] == 20 and dm.num_classes == 10
    assert all(decode_label(img.expand(3, -1, -1)) == int(y) for img, y in zip(*dm.splits.train))
    assert dm.channels == 1 and dm.image_size == (28, 28)


def test_layouts_become_nchw() -> None:
    nhw, nhwc, nchw = np.zeros((2, 5, 6), np.uint8), np.zeros((2, 5, 6, 3), np.uint8), np.zeros((2, 3, 5, 6), np.uint8)
    assert [tuple(to_uint8_nchw(a).shape) for a in (nhw, nhwc, nchw)] == [(2, 1, 5, 6), (2, 3, 5, 6), (2, 3, 5, 6)]
    with pytest.raises(UserError, match="not 8-bit"):
        to_uint8_nchw(np.zeros((2, 5, 6), np.float32))


def test_only_a_torchvision_class_can_be_named() -> None:
    with pytest.raises(UserError, match=r"^name='os.system' is invalid: a torchvision.datasets class"):
        TorchvisionDataModule(name="os.system")


def test_missing_files_and_unsafe_downloads_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"MNIST not found under root="):
        TorchvisionDataModule(name="MNIST", root=tmp_path, download=False).setup()
    # Flowers102 downloads tar archives through torchvision's unfiltered extract_archive: refused before any
    # download (tests/data/conftest.py's autouse `no_network` fails any that is tried).
    dm = TorchvisionDataModule(
        name="Flowers102", root=tmp_path, download=True, train_args={"split": "train"}, test_args={"split": "test"}
    )
    with pytest.raises(UserError, match="would extract archives without checks"):
        dm.prepare_data()
