"""`python -m adv_smooth.evaluate` stops on SIGTERM / SIGINT within seconds, exits 143 / 130 and leaves nothing that
looks complete (it used to log "Received SIGTERM" and test on)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adv_smooth.lightning.preemption import EvaluationStopped, stop_on_signals
from tests.conftest import REPO, TINY_JOB, compose_config, train_in_run_dir


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_the_block_stops_at_once(signum: int) -> None:
    before = signal.getsignal(signum)
    stopped = pytest.raises(EvaluationStopped, match=f"interrupted by {signal.Signals(signum).name}")
    with stopped as info, stop_on_signals():
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler raises at the next bytecode
    assert info.value.exit_status == 128 + signum
    assert signal.getsignal(signum) is before  # restored


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run whose evaluation shows a progress bar (how the test sees that testing has started)."""
    out = tmp_path_factory.mktemp("trained")
    shown = [o for o in TINY_JOB if "progress_bar" not in o]
    train_in_run_dir(compose_config(*shown, "logger=csv", output_dir=out), out)
    return out / "checkpoints" / "last.ckpt"


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_evaluate_stops_on_a_signal(checkpoint: Path, signum: int, status: int, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adv_smooth.evaluate",
            f"ckpt={checkpoint}",
            "eval.attacks.pgd.steps=5000",  # minutes of testing, were it not stopped
            f"hydra.run.dir={out}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # the progress bar (stdout) says when testing has started
        cwd=REPO,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    testing = threading.Event()

    def read() -> None:  # whatever is there: the progress bar writes a line, then nothing until the batch ends
        for chunk in iter(lambda: os.read(proc.stdout.fileno(), 4096), b""):
            lines.append(chunk.decode(errors="replace"))
            if "Testing" in "".join(lines[-3:]):
                testing.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert testing.wait(240), "".join(lines)
        time.sleep(1)
        proc.send_signal(signum)
        sent = time.monotonic()
        code = proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    reader.join(10)
    output = "".join(lines)
    assert code == status, output
    assert took < 15, f"{took:.1f} s to stop"
    assert "Traceback" not in output
    assert f"error: evaluation interrupted by {signal.Signals(signum).name}" in output
    record = json.loads((out / "results.json").read_text())
    assert record["status"] == "interrupted"
    assert not (out / "per_image_test.npz").exists()
