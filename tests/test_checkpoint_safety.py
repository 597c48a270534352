"""Checkpoints: loaded weights-only (a malicious pickle never runs), never overwritten with NaN weights."""

from __future__ import annotations

import io
import json
import os
import pathlib
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from adv_smooth.app.training_run import train
from adv_smooth.defenses import Defense
from adv_smooth.lightning import NonFiniteLossError
from adv_smooth.utils.checkpoints import load_checkpoint, rng_states, set_rng_states
from adv_smooth.utils.errors import UserError
from tests.test_bad_inputs import assert_one_line_exit_2, error_lines, run_main, run_process

TINY = ["model.width=4", "model.blocks=[1,1]", "trainer.deterministic=true", "logger=csv", "~callbacks.robustness"]


class _RunsCode:
    """Unpickling this calls `action(*args)`: what a crafted checkpoint does to `torch.load(weights_only=False)`."""

    def __init__(self, action, *args) -> None:
        self.action, self.args = action, args

    def __reduce__(self):
        return self.action, self.args


def _malicious(path: Path, marker: Path, how: str) -> Path:
    payload = {"state_dict": {}, "epoch": 0, "evil": _RunsCode(os.system, f"touch {marker}")}
    if how == "path_touch":
        payload["evil"] = _RunsCode(pathlib.Path.touch, marker)
    if how.startswith("pickle"):
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2 if how == "pickle2" else pickle.DEFAULT_PROTOCOL)
    else:
        torch.save(payload, path)
    return path


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("torch_save", "it would unpickle posix.system"),
        ("pickle2", "it would unpickle posix.system"),
        ("path_touch", "it would unpickle"),
        ("pickle", "not a weights-only checkpoint"),
    ],
)
def test_malicious_checkpoint_is_refused_without_running(tmp_path: Path, how: str, reason: str) -> None:
    marker = tmp_path / "pwned"
    evil = _malicious(tmp_path / "evil.ckpt", marker, how)
    with pytest.raises(UserError, match=rf"checkpoint '.*evil\.ckpt' refused: {reason}") as info:
        load_checkpoint(evil)
    assert not marker.exists()
    assert "\n" not in str(info.value)


def _truncated(path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, buffer)
    path.write_bytes(buffer.getvalue()[:500])


BROKEN = {
    "missing": (lambda p: None, "does not exist"),
    "folder": (lambda p: p.mkdir(), "is not a file"),
    "empty": (lambda p: p.write_bytes(b""), "not a readable PyTorch checkpoint"),
    "truncated": (_truncated, "not a readable PyTorch checkpoint"),
    "text": (lambda p: p.write_text("hello, not a checkpoint"), "not a readable PyTorch checkpoint"),
    "not a dict": (lambda p: torch.save([1, 2], p), "holds a list"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_checkpoints_are_one_line_user_errors(tmp_path: Path, kind: str) -> None:
    make, message = BROKEN[kind]
    path = tmp_path / "x.ckpt"
    make(path)
    with pytest.raises(UserError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_rng_states_survive_a_weights_only_round_trip() -> None:
    buffer = io.BytesIO()
    torch.save({"rng_states": rng_states()}, buffer)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    buffer.seek(0)
    set_rng_states(torch.load(buffer, weights_only=True)["rng_states"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_cli_refuses_malicious_resume_checkpoint(tmp_path: Path) -> None:
    """The real command: one line naming the checkpoint, exit 2, and the payload never ran."""
    marker = tmp_path / "pwned"
    evil = _malicious(tmp_path / "evil.ckpt", marker, "torch_save")
    assert_one_line_exit_2(*run_process("adv_smooth", f"resume={evil}", f"hydra.run.dir={tmp_path / 'run'}"), str(evil))
    assert not marker.exists()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_resume_checkpoint_of_another_model_is_refused(make_config, tmp_path: Path) -> None:
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"net.stem.weight": torch.zeros(3)}, "epoch": 0}, other)
    with pytest.raises(UserError, match="does not match this model"):
        train(make_config(*TINY, f"resume={other}"))


class NanAfter(Defense):
    """A defense whose loss term turns NaN from training step `after` on (counted in calls)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.calls = after, 0

    def loss_terms(self, batch, logits, activations):
        self.calls += 1
        zero = logits.sum() * 0.0
        return {"boom": zero + float("nan") if self.calls > self.after else zero}


NAN_AT = 25  # digits: 19 training steps per epoch at batch 64, so epoch 0 is clean and epoch 1 breaks
BOOM = [f"+defense.components.boom._target_={__name__}.NanAfter", f"+defense.components.boom.after={NAN_AT}"]


def _assert_last_is_clean_epoch_0(run: Path) -> None:
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 0 and last["global_step"] == 19
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    assert [p.name for p in (run / "checkpoints").glob("epoch*.ckpt")] == [
        p.name
        for p in (run / "checkpoints").glob("epoch001-*.ckpt")  # the weights after the 1st epoch
    ]


@pytest.mark.slow
def test_nan_in_epoch_1_keeps_epoch_0_checkpoints_and_cli_names_step_and_term(tmp_path: Path) -> None:
    code, stderr = run_main(
        "trainer=cpu",
        *TINY,
        *BOOM,
        "trainer.max_epochs=3",
        "~callbacks.progress_bar",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={tmp_path}",
    )
    lines = error_lines(stderr)
    assert code == 2, stderr
    assert lines[-1].startswith("error: NonFiniteLossError") and f"step {NAN_AT}" in lines[-1], stderr
    assert "train/boom" in lines[-1] and "Traceback" not in stderr
    _assert_last_is_clean_epoch_0(tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_step_scheduled_checkpoints_never_store_nan_weights(make_config, tmp_path: Path) -> None:
    """Checkpoint callbacks run before the module's own per-step check: the save itself refuses."""
    cfg = make_config(
        *TINY,
        *BOOM,
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=50",  # per-step check far away
        "callbacks.model_checkpoint.every_n_epochs=null",
        "callbacks.model_checkpoint.every_n_train_steps=4",
    )
    with pytest.raises(NonFiniteLossError, match=rf"train/boom.*step {NAN_AT}"):
        train(cfg)
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 24  # the last save before the NaN (steps 4, 8, ..., 24)
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_atomic_checkpoint_io_never_leaves_a_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk mid-write: the previous checkpoint survives, no truncated file or temp file remains."""
    import errno

    from adv_smooth.lightning.checkpointing import AtomicCheckpointIO, CheckpointWriteError

    io_plugin = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io_plugin.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 0}, path)
    assert load_checkpoint(path)["epoch"] == 0
    assert path.stat().st_mode & 0o777 == 0o666 & ~os.umask(os.umask(0o022))

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 the first bytes of a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointWriteError, match=r"could not write checkpoint .*last\.ckpt.*No space left") as info:
        io_plugin.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 1}, path)
    monkeypatch.undo()
    assert "\n" not in str(info.value) and "previous checkpoint is intact" in str(info.value)
    assert load_checkpoint(path)["epoch"] == 0  # the old file, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_training_writes_checkpoints_through_the_atomic_writer(make_config, tmp_path: Path, monkeypatch) -> None:
    from adv_smooth.lightning.checkpointing import AtomicCheckpointIO

    written: list[str] = []
    real = AtomicCheckpointIO.save_checkpoint

    def spy(self, checkpoint, path, storage_options=None):
        written.append(Path(path).name)
        return real(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", spy)
    train(
        make_config(
            *TINY, "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1"
        )
    )
    assert "last.ckpt" in written and any(name.startswith("epoch001") for name in written)
