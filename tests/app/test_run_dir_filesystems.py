"""A run dir on a read-only file system, and a disk that fills up: one line, exit status 2, from a real process.

The file systems are real: a tmpfs mounted read-only, and a 1 MiB tmpfs that a checkpoint cannot fit in. Mounting
needs root with CAP_SYS_ADMIN (CI runs as root); permission bits would not do, since root writes through them.
Elsewhere the tests skip, saying why.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import TINY_JOB
from tests.test_bad_inputs import assert_one_line_exit_2, error_lines, run_process

QUIET = [*TINY_JOB, "logger=csv", "~callbacks.model_summary"]
Mount = Callable[..., Path]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """`mount(size="1m", read_only=False, prepare=...)`: a fresh tmpfs under tmp_path, unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str = "1m", read_only: bool = False, prepare: Callable[[Path], None] | None = None) -> Path:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {done.stderr.decode().strip()}")
        mounted.append(point)
        if prepare is not None:
            prepare(point)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("exists", [True, False], ids=["existing dir", "dir to create"])
def test_read_only_run_dir_is_one_line_exit_2(tmpfs: Mount, exists: bool) -> None:
    root = tmpfs(read_only=True, prepare=lambda p: (p / "run").mkdir())
    run = root / "run" if exists else root / "new" / "run"
    code, stderr = run_process("adv_smooth", *QUIET, f"hydra.run.dir={run}")
    assert_one_line_exit_2(code, stderr, f"run dir {run} is not writable: Read-only file system")


def test_read_only_run_dir_in_process(tmpfs: Mount) -> None:
    from adv_smooth.app import run_dir
    from adv_smooth.utils.errors import UserError

    root = tmpfs(read_only=True, prepare=lambda p: (p / "run").mkdir())
    with pytest.raises(UserError, match="is not writable: Read-only file system"):
        run_dir.acquire(root / "run")
    with pytest.raises(UserError, match="is not writable: Read-only file system"):
        run_dir.check_creatable(root / "a" / "b")


@pytest.mark.slow
def test_full_disk_is_one_line_exit_2(tmpfs: Mount) -> None:
    """The first checkpoint (some 5 MB) does not fit: torch's 'unexpected pos' RuntimeError, caused by the
    write's ENOSPC, is reported as that ENOSPC, in one line; nothing under a finished name is left."""
    run = tmpfs(size="1m") / "run"
    code, stderr = run_process("adv_smooth", *[o for o in QUIET if not o.startswith("model.")], f"hydra.run.dir={run}")
    assert code == 2, stderr
    assert "Traceback" not in stderr
    errors = [line for line in error_lines(stderr) if line.startswith("error:")]
    assert len(errors) == 1 and error_lines(stderr)[-1] == errors[0], stderr
    assert "could not write checkpoint" in errors[0] and "No space left on device" in errors[0], stderr
    assert list((run / "checkpoints").iterdir()) == []
    assert json.loads((run / "results.json").read_text())["status"] == "failed"
