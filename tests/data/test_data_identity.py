"""Which images a split holds (`data/identity.py`): what the report and ensembles compare before pairing runs."""

from __future__ import annotations

import torch

from adv_smooth.app.build import build_datamodule
from adv_smooth.data.base import TensorImages
from adv_smooth.data.identity import fingerprint, split_fingerprints, split_identity
from tests.conftest import compose_config


def test_the_fingerprint_changes_with_any_pixel_label_or_shape() -> None:
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(2, 3, 4, 4)
    labels = torch.tensor([0, 1])
    first = fingerprint(images, labels)
    assert first.startswith("sha256:") and first == fingerprint(images.clone(), labels.clone())
    touched = images.clone()
    touched[1, 2, 3, 3] += 1
    assert fingerprint(touched, labels) != first
    assert fingerprint(images, torch.tensor([1, 0])) != first
    assert fingerprint(images.reshape(2, 3, 2, 8), labels) != first  # the same bytes, other images
    assert fingerprint(images.transpose(2, 3), labels) != first  # non-contiguous: hashed as it reads


def test_a_data_module_fingerprints_its_validation_and_test_splits(tmp_path) -> None:
    """Digits, offline: the same config gives the same prints; another validation carve-out changes only val."""
    cfg = compose_config(output_dir=tmp_path)
    first = split_fingerprints(build_datamodule(cfg))
    assert set(first) == {"val", "test"} and all(v.startswith("sha256:") for v in first.values())
    assert split_fingerprints(build_datamodule(cfg)) == first
    other = split_fingerprints(build_datamodule(compose_config("dataset.split_seed=1", output_dir=tmp_path)))
    assert other["test"] == first["test"] and other["val"] != first["val"]


def test_the_test_print_is_the_whole_split_s_when_a_subset_is_evaluated(tmp_path) -> None:
    """`eval.test_subset` swaps `test_set` for part of the split; runs on subsets of one split still agree."""
    datamodule = build_datamodule(compose_config(output_dir=tmp_path))
    whole = split_fingerprints(datamodule)
    images, labels = datamodule.splits.test
    datamodule.test_set = TensorImages(images[:10], labels[:10])
    assert split_fingerprints(datamodule) == whole


def test_the_identity_keeps_what_decides_the_images() -> None:
    config = {"_target_": "x.Cifar", "variant": "cifar100", "root": "/a", "batch_size": 64, "val_fraction": 0.1}
    assert split_identity(config) == {"_target_": "x.Cifar", "variant": "cifar100", "val_fraction": 0.1}
    assert split_identity({**config, "root": "/b", "augment": True, "mean": [0.5]}) == split_identity(config)
    assert split_identity(None) == {}
