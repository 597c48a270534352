"""The `debug` group: debug=default checks that a configuration runs; debug=smoke runs the whole flow small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import compose_config
from tests.test_bad_inputs import run_process


def test_the_debug_presets_compose_small_cpu_runs() -> None:
    smoke = compose_config("debug=smoke")
    assert smoke.trainer.accelerator == "cpu" and smoke.trainer.max_epochs == 2
    assert smoke.eval.test_subset == 100 and list(smoke.eval.snr_levels) == [33, 20] and smoke.eval.val_subset > 0
    assert set(smoke.eval.attacks) == {"fgsm", "pgd", "pgd_l2"}, "the default evaluation's attacks"
    quick = compose_config("debug=default", "dataset=svhn")  # on top of any choice
    assert quick.trainer.limit_train_batches == 2 and quick.trainer.max_epochs == 1 and quick.eval.test_subset == 8
    assert compose_config().get("debug") is None and compose_config().trainer.max_epochs == 8, "off by default"


def _check_run(run_dir: Path, epochs: int, images: int) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["epochs"] == epochs
    assert set(results["robustness"]) == {"val", "test"}, "the validation probe and the test evaluation ran"
    assert set(results["robustness"]["test"]["attacks"]) == {"fgsm", "pgd", "pgd_l2"}
    assert results["test_subset"]["n"] == images
    for name in ("robustness_test.png", "per_image_test.npz", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    return results


def test_debug_default_runs_every_stage(tmp_path: Path) -> None:
    code, stderr = run_process(
        "adv_smooth", "debug=default", "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path}"
    )
    assert code == 0, stderr[-3000:]
    _check_run(tmp_path, 1, 8)


@pytest.mark.slow
def test_debug_smoke_runs_the_whole_flow(tmp_path: Path) -> None:
    code, stderr = run_process("adv_smooth", "debug=smoke", f"hydra.run.dir={tmp_path}")
    assert code == 0, stderr[-3000:]
    _check_run(tmp_path, 2, 100)
