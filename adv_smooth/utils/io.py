"""Atomic file writes: a crashed run must never leave a file that looks complete.

`tempfile.mkstemp` creates its file with mode 0600; the result is given the mode any other new file
would get (0666 less the umask), so a results.json is as readable as the checkpoints beside it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

# A run dir's staging dir: a run's result files (and, when it replaces a completed run, its checkpoints) are
# written there and moved in as a set when it completes (`app/result_set.py`).
STAGING = ".incoming"


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write to a temp file in the same directory, fsync, then rename over `path`."""
    return write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """`write_text_atomic` for bytes (e.g. a compressed `.npz` of per-image records)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def current_umask() -> int:
    """The process umask: from /proc on Linux, else by setting it and straight back (not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
