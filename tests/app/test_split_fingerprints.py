"""Training and evaluation record which images they evaluated (`split_fingerprints` in results.json), the fact the
report pairs runs on (issue 26, item 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adv_smooth.app.build import build_datamodule
from adv_smooth.data.identity import split_fingerprints
from tests.conftest import TINY_JOB, compose_config, train_in_run_dir
from tests.test_bad_inputs import run_main


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_a_run_and_its_evaluation_record_the_same_test_images(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    cfg = compose_config(*TINY_JOB, output_dir=run)
    trained = train_in_run_dir(cfg, run)
    expected = split_fingerprints(build_datamodule(cfg))
    assert trained["split_fingerprints"] == expected
    assert json.loads((run / "results.json").read_text())["split_fingerprints"] == expected
    out = tmp_path / "eval"
    code, stderr = run_main(
        f"ckpt={run / 'checkpoints' / 'last.ckpt'}",
        "eval.snr_levels=[40]",
        "eval.attacks.pgd.steps=2",
        "eval.test_subset=20",  # part of the split evaluated: the print is still the whole split's
        f"hydra.run.dir={out}",
        module="adv_smooth.evaluate",
    )
    assert code == 0, stderr
    evaluated = json.loads((out / "results.json").read_text())
    assert evaluated["split_fingerprints"]["test"] == expected["test"] and evaluated["test_subset"]["n"] == 20
