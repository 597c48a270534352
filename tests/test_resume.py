"""Resume: a run killed mid-training and resumed with resume=last ends exactly like an uninterrupted one.

Exactness needs the random generators at the start of the epoch after the checkpoint: the train
loader's shuffle and the augmentation draw on them, and Lightning does not store them (the module
does, see `RobustClassifier.on_save_checkpoint`). `dataset.augment=true` makes the test sensitive to
the augmentation stream too.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from adv_smooth.app.training_run import train
from adv_smooth.utils.checkpoints import load_checkpoint
from adv_smooth.utils.errors import UserError
from tests.conftest import REPO, compose_config

SETTINGS = [
    "trainer=cpu",
    "model.width=4",
    "model.blocks=[1,1]",
    "trainer.deterministic=true",
    "dataset.batch_size=64",
    "dataset.augment=true",
    "optim.lr=0.05",
    "optim.milestones=[2]",
    "optim.gamma=0.1",
    "logger=csv",
    "~callbacks.progress_bar",
    "~callbacks.robustness",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
COMPARED = [
    ("metrics", "test/acc"),
    ("metrics", "test/loss"),
    ("fit", "val/acc"),
    ("fit", "val/loss"),
    ("fit", "train/loss_epoch"),
    ("fit", "train/lr"),
]


def _compared(results: dict[str, Any]) -> dict[str, float]:
    return {f"{part}:{key}": results[part][key] for part, key in COMPARED}


def _assert_same_ending(uninterrupted: dict[str, Any], resumed: dict[str, Any]) -> None:
    a, b = _compared(uninterrupted), _compared(resumed)
    assert a == pytest.approx(b, rel=0, abs=1e-6), (a, b)
    assert uninterrupted["epochs"] == resumed["epochs"]
    assert Path(uninterrupted["best_checkpoint"]).name == Path(resumed["best_checkpoint"]).name


@pytest.mark.usefixtures("one_thread")
def test_resume_in_process_matches_uninterrupted(tmp_path: Path) -> None:
    """Fast guard of the mechanism: 1 epoch, then resume to 3, against 3 straight (5 batches per epoch)."""
    limits = ["+trainer.limit_train_batches=5", "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=2"]
    quick = [*SETTINGS, *limits]
    straight = train(compose_config(*quick, "trainer.max_epochs=3", output_dir=tmp_path / "a"))
    train(compose_config(*quick, "trainer.max_epochs=1", output_dir=tmp_path / "b"))
    resumed = train(compose_config(*quick, "trainer.max_epochs=3", "resume=last", output_dir=tmp_path / "b"))
    _assert_same_ending(straight, resumed)
    with open(tmp_path / "b" / "csv" / "metrics.csv", newline="") as file:  # the first epoch's rows survive
        epochs = {row["epoch"] for row in csv.DictReader(file)}
    assert {"0", "1", "2"} <= epochs


@pytest.mark.usefixtures("one_thread")
def test_last_ckpt_follows_epochs_that_do_not_improve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With save_top_k=1, only epoch 0 "improves": last.ckpt must still hold the latest epoch (1, then 2)."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    def only_epoch_0_improves(self, trainer, current=None) -> bool:
        return trainer.current_epoch == 0

    monkeypatch.setattr(ModelCheckpoint, "check_monitor_top_k", only_epoch_0_improves)
    limits = ["+trainer.limit_train_batches=5", "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=2"]
    quick = [*SETTINGS, *limits]
    straight = train(compose_config(*quick, "trainer.max_epochs=3", output_dir=tmp_path / "a"))
    train(compose_config(*quick, "trainer.max_epochs=2", output_dir=tmp_path / "b"))  # "killed" after epoch 1
    last = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (1, 10)
    best = [p.name for p in (tmp_path / "b" / "checkpoints").glob("epoch*.ckpt")]
    assert best == [Path(straight["best_checkpoint"]).name] and best[0].startswith("epoch001")  # 1-based names
    resumed = train(compose_config(*quick, "trainer.max_epochs=3", "resume=last", output_dir=tmp_path / "b"))
    _assert_same_ending(straight, resumed)
    assert resumed["best_epoch"] == straight["best_epoch"] == 0
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")["epoch"] == 2


def test_resume_last_without_checkpoint_starts_fresh(tmp_path: Path) -> None:
    from adv_smooth.app.training_run import resolve_resume

    assert resolve_resume("last", tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert resolve_resume("last", tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(UserError, match="last.ckpt"):  # and an empty/corrupt last.ckpt is a clear error
        train(compose_config(*SETTINGS, "resume=last", output_dir=tmp_path))


def _command(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "adv_smooth", *SETTINGS, "trainer.max_epochs=5", f"hydra.run.dir={run_dir}", *extra]


def _finished_epoch(last: Path) -> int:
    """The epoch `last.ckpt` was saved after, or -1 while it is missing or half-written."""
    try:
        return int(load_checkpoint(last)["epoch"]) if last.exists() else -1
    except UserError:
        return -1


def _run(command: list[str]) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _wait_for_epoch(process: subprocess.Popen, last: Path, epoch: int, timeout: float = 600) -> None:
    """Until `last` holds `epoch` (counted from 0), while `process` still runs."""
    deadline = time.monotonic() + timeout
    while _finished_epoch(last) < epoch:
        assert process.poll() is None, "the run ended before it could be signalled"
        assert time.monotonic() < deadline, f"no checkpoint after epoch {epoch}"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_results(tmp_path: Path) -> None:
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight = subprocess.Popen(_command(straight_dir), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    victim = subprocess.Popen(_command(killed_dir), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed_dir / "checkpoints" / "last.ckpt"
    try:
        _wait_for_epoch(victim, last, 1)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
    finally:
        if victim.poll() is None:
            victim.kill()
    killed_at = _finished_epoch(last)
    assert victim.returncode == -signal.SIGKILL and 1 <= killed_at < 4
    assert not (killed_dir / "results.json").exists()  # only written at the very end
    assert not list(killed_dir.glob(".results.json.*"))

    _run(_command(killed_dir, "resume=last"))
    _, stderr = straight.communicate(timeout=900)
    assert straight.returncode == 0, stderr[-3000:]

    uninterrupted = json.loads((straight_dir / "results.json").read_text())
    resumed = json.loads((killed_dir / "results.json").read_text())
    assert uninterrupted["status"] == resumed["status"] == "completed"
    _assert_same_ending(uninterrupted, resumed)


@pytest.mark.slow
def test_sigterm_saves_exits_143_and_resumes(tmp_path: Path) -> None:
    """A scheduler's SIGTERM to a real run: last.ckpt at the next batch, status 143, not "completed"; resumable."""
    run = tmp_path / "preempted"
    victim = subprocess.Popen(_command(run), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = run / "checkpoints" / "last.ckpt"
    try:
        _wait_for_epoch(victim, last, 0)
        victim.send_signal(signal.SIGTERM)
        _, stderr = victim.communicate(timeout=120)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == 143, stderr[-3000:]
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    saved = load_checkpoint(last)
    assert 0 <= saved["epoch"] < 4
    record = json.loads((run / "results.json").read_text())
    assert record["status"] == "interrupted" and record["global_step"] == saved["global_step"]

    _run(_command(run, "resume=last"))
    resumed = json.loads((run / "results.json").read_text())
    assert resumed["status"] == "completed" and resumed["epochs"] == 5
    assert not list(run.glob("*.log"))  # no empty __main__.log (conf/hydra/job_logging/project.yaml)
