"""DDP on CPU (gloo): every validation and test image counts once, and the numbers equal one process's.

The digits split sizes are odd (449 test, 135 validation images), so two processes cannot split them evenly;
Lightning's own DistributedSampler would pad the last shard with a repeated image. Training runs under
`ddp_spawn` in this process (what a multirun allows), evaluation of the tested checkpoint once on one process
and once through the user's path for several devices: `python -m adv_smooth.evaluate ... trainer.strategy=ddp`
in a subprocess, which Lightning re-launches per device. The attacks are deterministic (FGSM, PGD without a
random start), so one process and two must agree image by image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from adv_smooth.app.training_run import train
from adv_smooth.data.sharding import EvalShards
from adv_smooth.robustness.records import Records
from tests.conftest import REPO, compose_config
from tests.test_bad_inputs import run_main

TEST_IMAGES, VAL_IMAGES, VAL_SUBSET = 449, 135, 33
TINY = [
    "trainer=cpu",
    "model.width=4",
    "model.blocks=[1,1]",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~callbacks.progress_bar",
    "dataset.eval_batch_size=100",  # several batches per process, the last ones of different sizes
    "eval.snr_levels=[40,25]",
    f"eval.val_subset={VAL_SUBSET}",
    "eval.attacks.pgd.steps=2",
    "eval.attacks.pgd.random_start=false",
    "~eval.attacks.pgd_l2",
]
TWO = ["trainer.devices=2", "trainer.accelerator=cpu"]


def _figures(logdir: Path) -> dict[str, int]:
    """How many times each image tag was written, over every event file (fit and test each spawn a rank 0)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    counts: dict[str, int] = {}
    for path in logdir.rglob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.HasField("image") or value.metadata.plugin_data.plugin_name == "images":
                    counts[value.tag] = counts.get(value.tag, 0) + 1
    return counts


def _robustness(results: dict, split: str) -> dict:
    return {k: v for k, v in results["robustness"][split].items() if k not in ("records", "honesty")}


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("ddp_spawn")
    cfg = compose_config(*TINY, *TWO, "trainer.strategy=ddp_spawn", output_dir=run)
    (run / ".hydra").mkdir()
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")  # as Hydra's run would: evaluation rebuilds the run from it
    return run, train(cfg)


@pytest.mark.slow
def test_ddp_spawn_counts_each_image_once_and_writes_once(spawned: tuple[Path, dict]) -> None:
    run, results = spawned
    assert results["status"] == "completed" and results["epochs"] == 1  # the fit loop's counters came back
    assert results["best_epoch"] == 0 and Path(results["best_checkpoint"]).is_file()
    assert results["robustness"]["test"]["n"] == TEST_IMAGES
    assert results["robustness"]["val"]["n"] == VAL_SUBSET  # the first 33 validation images, over both processes
    records = Records.load(run / "per_image_test.npz")
    assert records.n == TEST_IMAGES and (records.index == np.arange(TEST_IMAGES)).all()
    assert json.loads((run / "results.json").read_text())["robustness"]["test"]["n"] == TEST_IMAGES
    assert _figures(run / "tensorboard") == {"val/robustness_vs_snr": 1, "test/robustness_vs_snr": 1}  # rank 0's
    assert (run / "robustness_test.png").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(
        [Path(results["best_checkpoint"]).name, "last.ckpt"]
    )


@pytest.mark.slow
def test_one_process_and_two_agree_image_by_image(spawned: tuple[Path, dict], tmp_path: Path) -> None:
    """The tested checkpoint again, on one process (in this process) and on two through `ddp` (a subprocess)."""
    run, trained = spawned
    ckpt = trained["best_checkpoint"]
    one = tmp_path / "one"
    code, stderr = run_main(f"ckpt={ckpt}", f"hydra.run.dir={one}", module="adv_smooth.evaluate")
    assert code == 0, stderr
    two = tmp_path / "two"
    command = [sys.executable, "-m", "adv_smooth.evaluate", f"ckpt={ckpt}", f"hydra.run.dir={two}"]
    proc = subprocess.run(
        [*command, *TWO, "trainer.strategy=ddp"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    single, double = (json.loads((d / "results.json").read_text()) for d in (one, two))
    assert _robustness(single, "test") == _robustness(double, "test") == _robustness(trained, "test")
    assert single["robustness"]["test"]["n"] == TEST_IMAGES
    assert single["metrics"]["test/acc"] == pytest.approx(double["metrics"]["test/acc"], abs=1e-7)
    assert double["metrics"]["test/acc"] == pytest.approx(trained["metrics"]["test/acc"], abs=1e-7)
    assert single["metrics"]["test/loss"] == pytest.approx(double["metrics"]["test/loss"], rel=1e-5)
    a, b = (Records.load(d / "per_image_test.npz") for d in (one, two))
    assert (a.index == b.index).all() and (a.label == b.label).all() and (a.clean_pred == b.clean_pred).all()
    for name in a.attacks:
        assert (a.attacks[name].adv_correct == b.attacks[name].adv_correct).all(), name


def _shards(n: int, world: int, batch: int) -> list[list[list[int]]]:
    return [list(EvalShards(range(n), batch, world, rank)) for rank in range(world)]


@pytest.mark.parametrize(("n", "world", "batch"), [(449, 2, 100), (7, 3, 2), (513, 2, 256), (5, 2, 1), (0, 2, 8)])
def test_shards_cover_each_image_once_in_as_many_batches(n: int, world: int, batch: int) -> None:
    shards = _shards(n, world, batch)
    seen = sorted(i for shard in shards for b in shard for i in b)
    assert seen == list(range(n))
    assert len({len(shard) for shard in shards}) == 1  # per-batch collectives stay matched
    assert all(b for shard in shards for b in shard)  # no empty batch
    sizes = [len(b) for shard in shards for b in shard]
    assert not sizes or max(sizes) <= max(batch, 2)


def test_a_split_smaller_than_the_process_count_is_refused() -> None:
    from adv_smooth.utils.errors import UserError

    with pytest.raises(UserError, match="the test split has 1 image"):
        EvalShards(range(1), 8, 2, 0, "test split")


@pytest.mark.slow
def test_ddp_training_from_the_command_line(tmp_path: Path) -> None:
    """`trainer=ddp` as a user types it (CPU here): Lightning re-runs the command for rank 1, which shares rank 0's
    run dir without taking its lock; rank 0 alone writes results.json, and the test split counts 449 images."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "adv_smooth", "trainer=ddp", *TINY[1:], *TWO, "trainer.precision=32-true"]
    proc = subprocess.run(
        [*command, "trainer.sync_batchnorm=false", "eval.val_subset=0", f"hydra.run.dir={run}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "completed" and results["robustness"]["test"]["n"] == TEST_IMAGES
    assert Records.load(run / "per_image_test.npz").n == TEST_IMAGES
    assert proc.stdout.count("test accuracy:") == 1  # one summary, printed by rank 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trainer=cpu", "trainer.devices=4096"], "trainer.devices=4096 is invalid: cpu devices beyond what exists"),
        (["trainer.num_nodes=0"], "trainer.num_nodes=0 is invalid"),
    ],
)
def test_devices_beyond_what_exists_and_no_nodes_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    from tests.test_bad_inputs import assert_one_line_exit_2

    code, stderr = run_main(*args, f"hydra.run.dir={tmp_path}")
    assert_one_line_exit_2(code, stderr, message, tmp_path)
