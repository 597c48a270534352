"""Snapshot ensembles: cosine cycles with restarts, a checkpoint per cycle, the snapshots evaluated as one model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from adv_smooth.lightning.schedules import CosineRestarts
from adv_smooth.lightning.snapshots import Snapshots
from adv_smooth.utils.checkpoints import load_checkpoint
from adv_smooth.utils.errors import UserError
from tests.conftest import FAST, compose_config, train_in_run_dir

SMALL = [*FAST, "dataset.size=16", "model.blocks=[1,1]", "eval.val_subset=0", "eval.sanity_snr_db=null"]


def test_cosine_restarts_anneal_and_restart_at_the_peak() -> None:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    schedule = CosineRestarts(opt, cycles=3, min_lr=0.01, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    cycles = [lrs[i : i + 4] for i in (0, 4, 8)]
    expected = [0.01 + 0.19 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)]
    for cycle in cycles:
        assert cycle == pytest.approx(expected)  # peak first, then down along the cosine
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)  # after the last cycle: back at the peak


@pytest.mark.parametrize(("cycles", "epochs", "key"), [(4, 6, "cycles=4"), (0, 3, "cycles=0")])
def test_cycles_must_divide_the_epochs(cycles: int, epochs: int, key: str) -> None:
    with pytest.raises(UserError, match=key):
        Snapshots(cycles=cycles, epochs=epochs)


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory) -> tuple[Path, dict]:
    """3 cycles of one epoch each on 16x16 digits, through the real training task and `optim=snapshot`."""

    out = tmp_path_factory.mktemp("snapshot_run")
    cfg = compose_config(
        *SMALL, "optim=snapshot", "optim.cycles=3", "trainer.max_epochs=3", "test=false", output_dir=out
    )
    return out, train_in_run_dir(cfg, out)


@pytest.mark.slow
def test_three_cycles_save_three_snapshots_at_the_cycle_ends(snapshot_run) -> None:
    out, results = snapshot_run
    files = results["snapshots"]["files"]
    assert files == [str(out / "checkpoints" / f"snapshot{k}.ckpt") for k in (1, 2, 3)]
    steps_per_epoch = None
    for epoch, path in enumerate(files):
        checkpoint = load_checkpoint(path)
        assert checkpoint["epoch"] == epoch  # saved at the end of epoch k, the end of cycle k + 1
        steps_per_epoch = steps_per_epoch or checkpoint["global_step"]
        assert checkpoint["global_step"] == (epoch + 1) * steps_per_epoch
        lr = checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]
        assert lr == pytest.approx(0.1)  # the next step starts the next cycle at the peak
    assert results["snapshots"]["epochs"] == [0, 1, 2]


@pytest.mark.slow
def test_the_snapshot_ensemble_is_evaluated_beside_its_members(snapshot_run, tmp_path) -> None:
    from adv_smooth.app.evaluation_run import evaluate

    _, results = snapshot_run
    files = results["snapshots"]["files"]
    cfg = compose_config(
        f"ckpt=[{','.join(files)}]",
        "eval=report",
        "~eval.attacks.pgd",
        "eval.snr_levels=[33]",
        "eval.sanity_snr_db=null",
        output_dir=tmp_path,
        config_name="evaluate",
    )
    evaluated = evaluate(cfg)
    members = [m["metrics"]["test/acc"] for m in evaluated["members"]]
    assert len(members) == 3 and evaluated["ensemble"]["passes_per_attack_step"] == 3
    assert evaluated["metrics"]["test/acc"] >= sum(members) / 3
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["ckpt_path"] == files and [m["ckpt_path"] for m in saved["members"]] == files
    for i, member in enumerate(saved["members"]):
        assert (tmp_path / "members" / str(i) / "per_image_test.npz").is_file()
        assert member["robustness"]["test"]["clean_acc"] == pytest.approx(members[i])
    assert 0 <= saved["metrics"]["test/fgsm/snr33/acc"] <= saved["metrics"]["test/acc"]
