"""SIGTERM / SIGUSR1 mid-run: last.ckpt saved at the next safe point, status "interrupted", exit 128 + signal.

In process, a test callback sends the signal to this very process at a chosen point, which makes the
timing exact; tests/test_resume.py sends SIGTERM to a real subprocess.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import pytorch_lightning as pl

from adv_smooth.app.training_run import train
from adv_smooth.lightning.preemption import Preempted
from adv_smooth.utils.checkpoints import load_checkpoint
from tests.conftest import compose_config
from tests.test_bad_inputs import error_lines, run_main
from tests.test_resume import SETTINGS, _assert_same_ending

QUICK = [
    *SETTINGS,
    "+trainer.limit_train_batches=5",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=2",
    "trainer.max_epochs=3",
]


class SendSignal(pl.Callback):
    """Send `signum` to this process after training batch `step` (global, 1-based) or in epoch `epoch`'s validation."""

    def __init__(self, signum: int = signal.SIGTERM, step: int | None = None, epoch: int | None = None) -> None:
        self.signum, self.step, self.epoch = int(signum), step, epoch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.current_epoch == self.epoch and not trainer.sanity_checking:
            os.kill(os.getpid(), self.signum)


def _sender(signum: int = signal.SIGTERM, step: int | None = None, epoch: int | None = None) -> list[str]:
    key = "+callbacks.zz_signal"
    return [
        f"{key}._target_={__name__}.SendSignal",
        f"{key}.signum={signum}",
        f"{key}.step={step}",
        f"{key}.epoch={epoch}",
    ]


@pytest.mark.usefixtures("one_thread")
def test_sigterm_mid_epoch_saves_that_step_and_restores_the_handlers(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as info:
        train(compose_config(*QUICK, *_sender(step=7), output_dir=tmp_path))
    assert info.value.signum == signal.SIGTERM and info.value.exit_status == 143
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 7 and info.value.global_step == 7  # epoch 1, its 2nd batch: nothing lost
    assert last["epoch"] == 1 and info.value.epochs_done == 1
    assert signal.getsignal(signal.SIGTERM) == before
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))


@pytest.mark.usefixtures("one_thread")
def test_sigterm_during_validation_stops_at_the_epoch_end_and_resumes_exactly(tmp_path: Path) -> None:
    """The command-line contract: one line, status 143, results.json "interrupted"; then resume=last."""
    run = tmp_path / "interrupted"
    code, stderr = run_main(*QUICK, *_sender(epoch=0), f"hydra.run.dir={run}")
    lines = error_lines(stderr)
    assert code == 143, stderr
    assert len(lines) == 1 and "interrupted by SIGTERM" in lines[0] and "resume=last" in lines[0], stderr
    record = json.loads((run / "results.json").read_text())
    assert record["status"] == "interrupted" and record["signal"] == "SIGTERM" and record["epochs_done"] == 1
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 5  # epoch 0's end, not later

    resumed = train(compose_config(*QUICK, "resume=last", output_dir=run))
    straight = train(compose_config(*QUICK, output_dir=tmp_path / "straight"))
    assert resumed["status"] == "completed"
    _assert_same_ending(straight, resumed)


@pytest.mark.usefixtures("one_thread")
def test_sigusr1_exits_138(tmp_path: Path) -> None:
    code, stderr = run_main(*QUICK, *_sender(signal.SIGUSR1, step=2), f"hydra.run.dir={tmp_path}")
    assert code == 138 and "interrupted by SIGUSR1" in stderr, stderr
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "interrupted"
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 2


@pytest.mark.usefixtures("one_thread")
def test_a_requeued_sweep_job_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    """What SLURM's requeue does to a preempted array task: the same sweep command again, into the same job dir.

    The first launch is stopped by SIGTERM during epoch 0's validation (exit 143, job 0 "interrupted", its
    last.ckpt at the end of epoch 0); the identical second launch (`resume=last`, as slurm_gpu's recipe)
    resumes job 0 from there and ends as an uninterrupted run does. (The signal callback fires in epoch 0 only,
    which the resumed job never runs again.)
    """
    sweep = tmp_path / "sweep"
    command = ["-m", *QUICK, "seed=0", *_sender(epoch=0), "resume=last", f"hydra.sweep.dir={sweep}"]
    code, stderr = run_main(*command)
    assert code == 143 and "interrupted by SIGTERM" in stderr, stderr
    assert json.loads((sweep / "0" / "results.json").read_text())["status"] == "interrupted"
    assert load_checkpoint(sweep / "0" / "checkpoints" / "last.ckpt")["epoch"] == 0

    code, stderr = run_main(*command)  # the requeue
    assert code == 0, stderr
    resumed = json.loads((sweep / "0" / "results.json").read_text())
    straight = train(compose_config(*QUICK, output_dir=tmp_path / "straight"))
    assert resumed["status"] == "completed"
    _assert_same_ending(straight, resumed)
