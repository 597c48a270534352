"""What the README promises: `trainer.deterministic=true` runs repeat bitwise on the same machine and threads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adv_smooth.app.training_run import train
from adv_smooth.utils.checkpoints import load_checkpoint
from tests.conftest import compose_config
from tests.test_resume import SETTINGS

QUICK = [
    *SETTINGS,
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=2",
]


@pytest.mark.usefixtures("one_thread")
def test_two_deterministic_runs_give_identical_results(tmp_path: Path) -> None:
    first = train(compose_config(*QUICK, output_dir=tmp_path / "a"))
    second = train(compose_config(*QUICK, output_dir=tmp_path / "b"))
    assert first["fit"] == second["fit"] and first["metrics"] == second["metrics"]  # exactly, not approximately
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.ckpt")["state_dict"]
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
