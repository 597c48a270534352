"""What a user sees on the console: no lines they cannot act on, one progress bar style, where the results went.

A real `python -m adv_smooth` (default callbacks, logger, model summary; two tiny epochs) and a real
`python -m adv_smooth.evaluate` of its checkpoint, as subprocesses: the console is what a shell shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_bad_inputs import error_lines, run_main

TINY = [
    "trainer=cpu",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "model.width=4",
    "model.blocks=[1,1]",
    "~callbacks.robustness",  # the attacks are not what this checks; the evaluation below runs them
]
NOISE = (
    "isinstance(treespec, LeafSpec)` is deprecated",
    "litlogger",
    "Trainer already configured with model summary callbacks",
    "💡",  # Lightning's tips (litmodels too, when a Trainer makes its default checkpoint callback)
)


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    run = tmp_path_factory.mktemp("console") / "run"
    return run, _run("adv_smooth", *TINY, f"hydra.run.dir={run}")


@pytest.mark.slow
def test_a_default_run_prints_no_noise_and_says_where_it_wrote(trained) -> None:
    run, proc = trained
    console = proc.stdout + proc.stderr
    assert not [line for line in console.splitlines() if any(n in line for n in NOISE)]
    assert "GPU available" in console  # Lightning's other lines are kept: only the three above are filtered
    assert "warning: optim.milestones" not in console  # the default's drop (60 % of 2 epochs) fits the run
    assert "Epoch 1: 100%|" in proc.stdout and "━" not in proc.stdout  # TQDM, as configured (Rich draws ━)
    assert proc.stdout.splitlines()[-1].startswith(f"results: {run / 'results.json'}; TensorBoard: tensorboard")


@pytest.mark.slow
def test_evaluate_names_the_trained_runs_choices_and_its_directory(trained, tmp_path: Path) -> None:
    run, _ = trained
    out = tmp_path / "eval"
    proc = _run(
        "adv_smooth.evaluate",
        f"ckpt={run / 'checkpoints' / 'last.ckpt'}",
        "eval=report",
        "eval.snr_levels=[30]",
        "eval.attacks.pgd.steps=1",
        "eval.sanity_snr_db=null",
        f"hydra.run.dir={out}",
    )
    choices = json.loads((out / "results.json").read_text())["choices"]
    # the checkpoint's run (not this command's defaults), and the eval preset this command chose
    expected = {"dataset": "digits", "model": "preact_resnet18_small", "defense": "vanilla", "eval": "report"}
    assert {k: choices.get(k) for k in expected} == expected
    assert "digits | preact_resnet18_small | vanilla |" in proc.stdout
    last = proc.stdout.splitlines()[-1]
    assert last.startswith(f"results: {out / 'results.json'}; accuracy vs SNR: {out / 'robustness_test.png'}")
    assert f"tensorboard --logdir {out / 'tensorboard'}" in last
    assert not [line for line in (proc.stdout + proc.stderr).splitlines() if any(n in line for n in NOISE)]
    assert "Testing DataLoader 0: 100%|" in proc.stdout and "━" not in proc.stdout  # TQDM, like training


def test_a_drop_after_the_last_epoch_is_one_warning_line(tmp_path: Path) -> None:
    """Printed before anything is loaded: here the run then stops at a bad value, still before the data."""
    code, stderr = run_main(
        "optim.milestones=[5]", "trainer.max_epochs=2", "overwrite=maybe", f"hydra.run.dir={tmp_path}"
    )
    lines = error_lines(stderr)
    assert code == 2 and len(lines) == 2, stderr
    assert lines[0] == (
        "warning: optim.milestones=[5]: the learning rate would drop after 5 epochs, but trainer.max_epochs=2, so "
        "it never does; give fewer epochs or fractions of the run (e.g. optim.milestones=[0.6])"
    )
    assert lines[1].startswith("error: overwrite='maybe' is invalid")
