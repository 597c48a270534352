"""Checkpoint files count epochs from 1, as the console does; a run without a validation split runs no validation."""

from __future__ import annotations

from pathlib import Path

import torch

from adv_smooth.lightning.checkpointing import ModelCheckpoint
from tests.test_bad_inputs import run_process


def test_file_names_count_epochs_from_one(tmp_path: Path) -> None:
    callback = ModelCheckpoint(dirpath=tmp_path, filename="epoch{epoch:03d}-val_acc{val/acc:.4f}")
    callback.auto_insert_metric_name = False
    name = callback.format_checkpoint_name({"epoch": torch.tensor(3), "val/acc": torch.tensor(0.5)})
    assert Path(name).name == "epoch004-val_acc0.5000.ckpt", "the weights after the 4th epoch: the summary's epoch 4"


def test_val_fraction_zero_runs_no_validation_and_names_no_validation_metric(tmp_path: Path) -> None:
    args = ["debug=default", "dataset.val_fraction=0", "eval.checkpoint=last", "trainer.enable_progress_bar=false"]
    code, stderr = run_process("adv_smooth", *args, f"hydra.run.dir={tmp_path}")
    assert code == 0, stderr[-3000:]
    assert "is zero" not in stderr and "could not find the monitored key" not in stderr, stderr
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert names == ["epoch001.ckpt", "last.ckpt"], names
