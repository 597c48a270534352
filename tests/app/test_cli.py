"""User mistakes on the command line: one clear line, non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    (["dataset=foo"], "dataset='foo' is not a known dataset option"),
    (["defense=bogus"], "defense='bogus' is not a known defense option"),
    (["optim.lr=-1"], "optim.lr=-1"),
    (["dataset.batch_size=0"], "dataset.batch_size=0"),
    (["dataset.val_fraction=1.0"], "dataset.val_fraction=1.0"),
    (["--info", "--cfg", "job"], "--cfg and --info cannot be combined"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_user_mistake_is_one_line(args: list[str], message: str, tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "adv_smooth", *args, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
