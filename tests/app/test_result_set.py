"""A completed run's files are replaced only as a set, and only by a run that completed (issue 26, item 1).

A failed resume (`resume=last`) or `overwrite=true` run used to delete results.json before training, then
leave a failure record beside the completed run's `per_image_test.npz` and `robustness_test.png`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl

from adv_smooth.app import result_set
from adv_smooth.run_record import RunRecord, read
from adv_smooth.utils.io import STAGING
from tests.test_bad_inputs import error_lines, run_main

JOB = [
    "trainer=cpu",
    "model.width=4",
    "model.blocks=[1,1]",
    "logger=csv",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "eval.snr_levels=[40]",
    "eval.val_subset=0",
    "eval.attacks.pgd.steps=2",
    "eval.attacks.pgd_l2.steps=2",
]
FAIL_IN_TEST = [f"+callbacks.boom._target_={__name__}.FailAfterTest"]


class FailAfterTest(pl.Callback):
    """Fails once the test split is done: the robustness records and figure of this run are already written."""

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise RuntimeError("the disk went away")


def _snapshot(run: Path) -> dict[str, bytes]:
    """The completed run's result set and checkpoints, byte for byte."""
    names = ["results.json", "per_image_test.npz", "robustness_test.png"]
    names += [f"checkpoints/{p.name}" for p in (run / "checkpoints").iterdir()]
    return {name: (run / name).read_bytes() for name in names}


@pytest.fixture
def completed(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    code, stderr = run_main(*JOB, f"hydra.run.dir={run}")
    assert code == 0, stderr
    assert json.loads((run / "results.json").read_text())["status"] == "completed"
    return run


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("how", [["resume=last"], ["overwrite=true", "seed=1"]], ids=["resume", "overwrite"])
def test_a_failed_run_leaves_the_completed_set_whole(completed: Path, how: list[str]) -> None:
    before = _snapshot(completed)
    code, stderr = run_main(*JOB, *how, *FAIL_IN_TEST, f"hydra.run.dir={completed}")
    assert code != 0
    assert _snapshot(completed) == before  # results.json, records and figure: all the completed run's
    assert not (completed / STAGING / "results.json").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_a_completed_overwrite_replaces_the_whole_set(completed: Path) -> None:
    before = _snapshot(completed)
    code, stderr = run_main(*JOB, "overwrite=true", "seed=1", "eval.snr_levels=[33]", f"hydra.run.dir={completed}")
    assert code == 0, stderr
    after = _snapshot(completed)
    assert all(after[name] != before.get(name) for name in after)  # every file is the new run's, checkpoints too
    results = json.loads(after["results.json"])
    assert results["seed"] == 1 and results["robustness"]["test"]["attacks"]["fgsm"]["levels"] == [33]
    assert Path(results["best_checkpoint"]).parent == completed / "checkpoints"
    assert Path(results["best_checkpoint"]).is_file()
    assert not (completed / STAGING).exists()
    assert not error_lines(stderr)


def test_a_staged_checkpoint_moved_in_keeps_its_callback_state(tmp_path: Path) -> None:
    """Lightning drops a checkpoint callback's best score when the saved dirpath is not its own: a checkpoint
    written staged (`.incoming/checkpoints`) and moved in with its set names its files where they now are."""
    from adv_smooth.lightning.checkpointing import moved_in

    staged, final = str(tmp_path / ".incoming" / "checkpoints"), str(tmp_path / "checkpoints")
    state = {
        "dirpath": staged,
        "best_model_path": f"{staged}/epoch001.ckpt",
        "best_k_models": {f"{staged}/epoch001.ckpt": 0.5},
        "best_model_score": 0.5,
    }
    assert moved_in(state, final) == {
        "dirpath": final,
        "best_model_path": f"{final}/epoch001.ckpt",
        "best_k_models": {f"{final}/epoch001.ckpt": 0.5},
        "best_model_score": 0.5,
    }
    assert moved_in(state, str(tmp_path / "elsewhere")) is state  # another dir: Lightning's own rule applies


def test_commit_swaps_the_set_and_rewrites_staged_paths(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text('{"status": "completed"}')
    (out / "per_image_test.npz").write_bytes(b"old records")
    (out / "robustness_test.png").write_bytes(b"old figure")  # the new set has none: it must not stay behind
    (out / "members" / "0").mkdir(parents=True)
    (out / "members" / "0" / "results.json").write_text("{}")
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "last.ckpt").write_bytes(b"weights")  # not a result file: untouched
    staging = result_set.prepare(out)
    (staging / "per_image_test.npz").write_bytes(b"new records")
    (staging / "members" / "0").mkdir(parents=True)
    (staging / "members" / "0" / "per_image_test.npz").write_bytes(b"member")
    staged = RunRecord(status="completed", best_checkpoint=str(staging / "checkpoints" / "x.ckpt"))
    results = result_set.commit(out, staged)
    assert results.best_checkpoint == str(out / "checkpoints" / "x.ckpt")
    assert read(out / "results.json") == results
    assert (out / "per_image_test.npz").read_bytes() == b"new records"
    assert not (out / "robustness_test.png").exists()
    assert sorted(p.name for p in (out / "members" / "0").iterdir()) == ["per_image_test.npz"]
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == b"weights"
    assert not staging.exists()


def test_prepare_empties_what_a_killed_run_left(tmp_path: Path) -> None:
    staging = result_set.prepare(tmp_path)
    (staging / "per_image_test.npz").write_bytes(b"half a run")
    assert list(result_set.prepare(tmp_path).iterdir()) == []
