"""A sweep with a failing job: the other jobs run and keep their results, the failure is recorded, exit != 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_JOB
from tests.test_bad_inputs import error_lines, run_main

QUICK = [*TINY_JOB, "logger=csv"]


def _status(job_dir: Path) -> dict:
    return json.loads((job_dir / "results.json").read_text())


@pytest.mark.slow
def test_failing_job_does_not_stop_the_sweep(tmp_path: Path) -> None:
    """The real command: job 1 of 3 has a bad value; jobs 0 and 2 (after it) still complete."""
    proc = subprocess.run(
        [sys.executable, "-m", "adv_smooth", "-m", "optim.lr=0.05,-1,0.02", *QUICK, f"hydra.sweep.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert [_status(tmp_path / str(i))["status"] for i in range(3)] == ["completed", "failed", "completed"]
    assert "optim.lr=-1 is invalid" in _status(tmp_path / "1")["error"]
    summary = error_lines(proc.stderr)[-1]
    assert summary.startswith(f"error: 1 of 3 jobs failed: {tmp_path / '1'} (optim.lr=-1): "), proc.stderr[-3000:]
    assert "optim.lr=-1 is invalid" in summary
    assert "Traceback" not in proc.stderr


def test_runtime_failures_are_summarized_too(tmp_path: Path) -> None:
    """A job that diverges (not a user error) is reported the same way; both failures are listed."""
    boom = "tests.test_checkpoint_safety.NanAfter"
    code, stderr = run_main(
        "-m",
        f"+defense.components.boom._target_={boom}",
        "+defense.components.boom.after=0,1000,1",
        *QUICK,
        f"hydra.sweep.dir={tmp_path}",
    )
    assert code == 2, stderr
    assert [_status(tmp_path / str(i))["status"] for i in range(3)] == ["failed", "completed", "failed"]
    summary = error_lines(stderr)[-1]
    assert summary.startswith("error: 2 of 3 jobs failed: "), stderr
    assert f"{tmp_path / '0'} (+defense.components.boom.after=0)" in summary
    assert f"{tmp_path / '2'} (+defense.components.boom.after=1)" in summary
    assert "NonFiniteLossError: loss term 'train/boom' became non-finite at step 0" in summary
    assert "Traceback" not in stderr
