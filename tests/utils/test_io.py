"""Atomic writes: a crash while writing leaves either the old file or none, and no temp file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adv_smooth.utils import io
from adv_smooth.utils.io import write_json_atomic, write_text_atomic


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_json_round_trip_and_no_temp_file(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "results.json", {"status": "completed", "acc": 0.5})
    assert json.loads((tmp_path / "results.json").read_text()) == {"acc": 0.5, "status": "completed"}
    assert _leftovers(tmp_path) == ["results.json"]


def test_serialization_crash_leaves_no_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_dumps(*args, **kwargs):
        raise TypeError("not serializable")

    monkeypatch.setattr(io.json, "dumps", broken_dumps)
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "results.json", {"status": "completed"})
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("existing", [None, "old complete file\n"])
def test_crash_mid_write_keeps_old_file_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: str | None
) -> None:
    target = tmp_path / "report.md"
    if existing is not None:
        target.write_text(existing)

    def crash(fd: int) -> None:  # the data is in the temp file but not yet renamed over the target
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new half-written report")
    monkeypatch.setattr(io.os, "fsync", os.fsync)
    assert _leftovers(tmp_path) == ([] if existing is None else ["report.md"])
    if existing is not None:
        assert target.read_text() == existing


def test_interrupt_is_cleaned_up_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyboardInterrupt (Ctrl-C mid-write) is not an Exception; the temp file must still go."""

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(tmp_path / "results.json", {"status": "completed"})
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_results_respect_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """mkstemp's 0600 is not kept: the file gets what `open()` would give it under this umask."""
    previous = os.umask(umask)
    try:
        assert io.current_umask() == umask
        write_json_atomic(tmp_path / "results.json", {"status": "completed"})
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == mode
