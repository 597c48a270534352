"""`python -m benchmarks.autoattack --smoke`: eval=autoattack and pyautoattack's standard version side by side on a
tiny network (shortened attacks), as a subprocess: both robust accuracies and wall times in the JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_the_side_by_side_runs_and_agrees_on_a_tiny_network(tmp_path: Path, norm: str) -> None:
    pytest.importorskip("pyautoattack")
    out = tmp_path / "aa.json"
    command = [sys.executable, "-m", "benchmarks.autoattack", "--smoke", "--norm", norm, "--device", "cpu"]
    proc = subprocess.run(
        [*command, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["ours"]["wall_s"] > 0 and result["autoattack"]["wall_s"] > 0
    assert result["autoattack"]["attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert result["robust_acc_abs_diff_points"] <= 0.3 + 1e-9, result
