"""`python -m benchmarks.host_syncs --smoke`: the host-sync audit finds each kind of device->host sync, the accuracy
metric's update makes none, and the smoothness loss makes none when the clean count is known (one when it is not)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_host_sync_smoke() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.host_syncs", "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["kinds"] == ["boolean-mask getitem", "host->device torch.tensor(..., device=)", "readback .item()"]
    assert result["accuracy_update_syncs"] == 0
    assert result["smoothness_syncs"] == {"unknown": 1, "known": 0} and result["smoothness_same_loss"]
