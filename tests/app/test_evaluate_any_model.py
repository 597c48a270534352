"""`python -m adv_smooth.evaluate weights=FILE model=... dataset=...`: a network that is not one of our
checkpoints (a torchvision ResNet-18 here), and the bad inputs of the ensemble and outside-model evaluations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from omegaconf import OmegaConf

from adv_smooth.models.external import IMAGENET_MEAN, IMAGENET_STD, load_weights
from adv_smooth.robustness.records import Records
from tests.conftest import compose_config
from tests.data.data_fixtures import write_image_folder
from tests.test_bad_inputs import assert_one_line_exit_2, run_main

pytestmark = pytest.mark.usefixtures("one_thread")

EVAL = ["eval=report", "~eval.attacks.pgd", "eval.snr_levels=[33]", "eval.sanity_snr_db=null"]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Two classes of 32x32 RGB PNGs in the ImageFolder layout (train/ and test/)."""
    root = tmp_path / "images"
    write_image_folder(root, {"train": {"cat": 6, "dog": 6}, "test": {"cat": 8, "dog": 8}})
    return root


def _resnet18(num_classes: int = 2, images: Path | None = None) -> torch.nn.Module:
    """A torchvision ResNet-18, fitted for a few steps on the training images when given (so its predictions
    differ from image to image and the comparison below is not trivial)."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=num_classes)
    if images is not None:
        from adv_smooth.data.folder import FolderDataModule

        data = FolderDataModule(root=str(images), val_fraction=0.0)
        data.setup()
        x, y = data.splits.train
        x = (x.float() / 255 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
            1, 3, 1, 1
        )
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(8):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net.train()(x), y).backward()
            opt.step()
    return net.eval()


def test_a_torchvision_state_dict_scores_as_the_model_called_directly(images: Path, tmp_path: Path) -> None:
    from adv_smooth.app.build import build_datamodule
    from adv_smooth.app.evaluation_run import evaluate

    net = _resnet18(images=images)
    weights = tmp_path / "resnet18.pt"
    torch.save(net.state_dict(), weights)
    overrides = ["model=torchvision", "model.network.num_classes=2", "dataset=folder", f"dataset.root={images}"]
    out = tmp_path / "eval"
    cfg = compose_config(f"weights={weights}", *overrides, *EVAL, output_dir=out, config_name="evaluate")
    results = evaluate(cfg)

    test_images, labels = build_datamodule(cfg).splits.test  # the same test split, called without our pipeline
    x = test_images.float() / 255
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        direct = net((x - mean) / std).argmax(1)
    assert len(set(direct.tolist())) == 2  # the head separates the images: the comparison is not trivial
    assert results["metrics"]["test/acc"] == pytest.approx((direct == labels).float().mean().item())
    records = Records.load(out / "per_image_test.npz")
    assert records.clean_pred.tolist() == direct[records.index].tolist()  # image by image
    saved = json.loads((out / "results.json").read_text())
    assert saved["weights"] == str(weights.resolve()) and saved["model"].endswith("Normalized")
    assert set(saved["robustness"]["test"]["attacks"]) == {"fgsm"} and "honesty" in saved


def test_a_lightning_checkpoint_loads_without_its_attribute_prefix(tmp_path: Path) -> None:
    net = _resnet18()
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}, "epoch": 3}, path)
    fresh = torchvision.models.resnet18(num_classes=2)
    load_weights(fresh, path)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), net.state_dict().values()))


# -- bad inputs: one line naming the problem, exit status 2 --------------------------------------------------------
def test_a_state_dict_that_does_not_fit_the_model(images: Path, tmp_path: Path) -> None:
    weights = tmp_path / "five_classes.pt"
    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), weights)
    out = tmp_path / "eval"
    code, stderr = run_main(
        f"weights={weights}",
        "model=torchvision",
        "model.network.num_classes=2",
        "dataset=folder",
        f"dataset.root={images}",
        f"hydra.run.dir={out}",
        module="adv_smooth.evaluate",
    )
    assert_one_line_exit_2(code, stderr, f"weights={str(weights)!r} does not fit the model: size mismatch for fc", out)


def test_an_empty_checkpoint_list(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    code, stderr = run_main("ckpt=[]", f"hydra.run.dir={out}", module="adv_smooth.evaluate")
    assert_one_line_exit_2(code, stderr, "ckpt=[] is an empty list", out)


def _fake_run(root: Path, *overrides: str) -> Path:
    """A run dir as training leaves it: the saved config and a checkpoint (the check comes before the weights)."""
    (root / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose_config(*overrides, output_dir=root), root / ".hydra" / "config.yaml")
    (root / "checkpoints").mkdir()
    torch.save({"state_dict": {}, "epoch": 0}, root / "checkpoints" / "last.ckpt")
    return root / "checkpoints" / "last.ckpt"


def test_ensemble_members_trained_on_different_datasets(images: Path, tmp_path: Path) -> None:
    digits = _fake_run(tmp_path / "a")
    folder = _fake_run(tmp_path / "b", "dataset=folder", f"dataset.root={images}")
    out = tmp_path / "eval"
    code, stderr = run_main(f"ckpt=[{digits},{folder}]", f"hydra.run.dir={out}", module="adv_smooth.evaluate")
    assert_one_line_exit_2(code, stderr, f"ckpt[1]={str(folder)!r} was trained on another dataset than ckpt[0]", out)
