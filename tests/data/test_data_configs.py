"""Every dataset config composes with the main config, instantiates, and sets up on fixture data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from adv_smooth.data.base import ImageDataModule

CONF = Path(__file__).resolve().parents[2] / "conf"
DAILY_KEYS = {
    "root",
    "download",
    "batch_size",
    "augment",
    "eval_batch_size",
    "val_fraction",
    "split_seed",
    "flip",
    "normalize",
}


def _compose(dataset: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"dataset={dataset}", *overrides])


DATASETS = sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))  # discovered: a new YAML is tested too


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_exposes_the_daily_keys_and_constructs(dataset: str, tmp_path: Path) -> None:
    """The keys a user types everywhere, and the constructor's checks pass on the shipped values (no file read)."""
    cfg = _compose(dataset, f"dataset.root={tmp_path}")
    assert set(cfg.dataset) >= DAILY_KEYS
    assert isinstance(instantiate(cfg.dataset), ImageDataModule)


@pytest.mark.parametrize(
    ("dataset", "root_fixture", "batch_size", "num_classes", "image_size"),
    [
        ("cifar10", "cifar10_root", 128, 10, (32, 32)),
        ("cifar100", None, 128, 100, (32, 32)),
        ("svhn", "svhn_root", 100, 10, (32, 32)),
        ("tiny_imagenet", "tiny_root", 50, 3, (64, 64)),
        ("folder", "folder_root", 128, 3, (32, 32)),
    ],
)
def test_config_instantiates_and_sets_up(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    dataset: str,
    root_fixture: str | None,
    batch_size: int,
    num_classes: int,
    image_size: tuple[int, int],
) -> None:
    if root_fixture is None:  # CIFAR-100 has no shared fixture root: write one here
        from data_fixtures import write_cifar

        request.getfixturevalue("trust_checksums")
        root = tmp_path / "c100"
        write_cifar(root, "cifar100", list(range(0, 100, 7)), [1, 2, 3])
    else:
        root = request.getfixturevalue(root_fixture)[0]
    cfg = _compose(dataset, f"dataset.root={root}", "dataset.download=false")
    dm = instantiate(cfg.dataset)
    assert isinstance(dm, ImageDataModule)
    dm.setup()
    assert dm.batch_size == batch_size
    assert dm.num_classes == num_classes and dm.image_size == image_size
    assert isinstance(dm.mean, tuple) and all(isinstance(v, float) for v in dm.mean + dm.std)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (3, *image_size) and len(x) == len(y)


def test_dataset_specific_choices() -> None:
    tiny = _compose("tiny_imagenet")
    assert tiny.model.stem_pool is True  # the report's max-pool after the stem
    assert tiny.dataset.augment is True and list(tiny.dataset.mean) == [0.485, 0.456, 0.406]
    assert _compose("tiny_imagenet", "model=preact_resnet18").model.stem_pool is False  # the user still wins
    svhn = _compose("svhn")
    assert svhn.dataset.flip is False and svhn.dataset.normalize is False and svhn.dataset.extra is False
    assert _compose("cifar10").model.stem_pool is False
    assert _compose("cifar10", "model=preact_resnet18_tiny").model.stem_pool is True
    assert _compose("folder").dataset.root is None


def test_root_follows_the_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ADV_SMOOTH_DATA", str(tmp_path))
    cfg = _compose("cifar10")
    assert instantiate(cfg.dataset).root == tmp_path
