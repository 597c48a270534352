"""A checkpoint that does not fit the network its run dir's config builds (another width, another class count):
one line naming the first differing tensor and both shapes, exit 2 (issue 26, item 9: the message stopped at
torch's header, "Error(s) in loading state_dict for RobustClassifier:")."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from adv_smooth.app.build import build_datamodule, build_defense, build_module
from tests.conftest import compose_config
from tests.data.data_fixtures import write_image_folder
from tests.test_bad_inputs import assert_one_line_exit_2, run_main, run_process

SMALL = ["trainer=cpu", "model.blocks=[1,1]", "eval.snr_levels=[40]", "eval.val_subset=0"]


def _run_with_foreign_weights(run: Path, saved: list[str], weights: list[str]) -> Path:
    """A run dir whose `.hydra/config.yaml` is `saved` and whose checkpoint holds the weights of a network built
    from `weights` (a checkpoint moved between run dirs): no training, the state_dict is all evaluate reads."""
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose_config(*SMALL, *saved, output_dir=run), run / ".hydra" / "config.yaml")
    other = compose_config(*SMALL, *weights, output_dir=run)
    module = build_module(other, build_datamodule(other), build_defense(other.defense))
    (run / "checkpoints").mkdir()
    torch.save({"state_dict": module.state_dict(), "epoch": 0}, run / "checkpoints" / "last.ckpt")
    return run / "checkpoints" / "last.ckpt"


def _folder(root: Path, classes: list[str]) -> str:
    write_image_folder(root, {"train": dict.fromkeys(classes, 2), "test": dict.fromkeys(classes, 1)})
    return f"dataset.root={root}"


@pytest.mark.parametrize("case", ["width", "classes"])
def test_the_first_differing_tensor_and_both_shapes_are_named(tmp_path: Path, case: str) -> None:
    if case == "width":
        ckpt = _run_with_foreign_weights(tmp_path / "run", ["model.width=4"], ["model.width=8"])
        detail = "'net.stem.weight' has shape (8, 1, 3, 3) in it, the network expects (4, 1, 3, 3)"
    else:
        three = _folder(tmp_path / "three", ["a", "b", "c"])
        two = _folder(tmp_path / "two", ["a", "b"])
        folder = ["dataset=folder", "model.width=4"]
        ckpt = _run_with_foreign_weights(tmp_path / "run", [*folder, three], [*folder, two])
        detail = "has shape (2, 8) in it, the network expects (3, 8)"
    out = tmp_path / "eval"
    code, stderr = run_main(f"ckpt={ckpt}", f"hydra.run.dir={out}", module="adv_smooth.evaluate")
    assert_one_line_exit_2(code, stderr, f"ckpt={str(ckpt)!r} does not fit the network its run dir's config", out)
    assert detail in stderr and "Error(s) in loading" not in stderr


@pytest.mark.slow
def test_real_process_names_the_tensor(tmp_path: Path) -> None:
    ckpt = _run_with_foreign_weights(tmp_path / "run", ["model.width=4"], ["model.width=8"])
    out = tmp_path / "eval"
    code, stderr = run_process("adv_smooth.evaluate", f"ckpt={ckpt}", f"hydra.run.dir={out}")
    assert_one_line_exit_2(code, stderr, "'net.stem.weight' has shape (8, 1, 3, 3) in it, the network expects", out)
