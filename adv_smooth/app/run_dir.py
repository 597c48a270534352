"""Who may write into a run directory, and what may replace its results.json.

Two runs in one directory would interleave checkpoints, logs and results, so a job holds an exclusive lock on
`<run dir>/.lock` for as long as it runs (the `filelock` package: an OS lock, `flock` on POSIX and `msvcrt` on
Windows, which the system drops when the process dies, so a killed run never leaves a stale lock); a second run
is refused in one line naming the PID that holds it.

A completed results.json is the one thing a finished run is worth: a later command pointed at the same
directory must not replace it with a failure record, and a new training run may start there only to
resume it (`resume`) or when told to (`overwrite=true`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from adv_smooth.run_record import FILE, RunRecord, read
from adv_smooth.utils.errors import UserError

LOCK_NAME = ".lock"
_HELD: dict[Path, FileLock] = {}  # run dir -> its held .lock, for this process


def _holder(lock: Path) -> str:
    try:
        pid = lock.read_text().strip()
    except OSError:
        pid = ""
    return f"PID {pid}" if pid.isdigit() else "another process"


def acquire(directory: Path) -> bool:
    """Lock `directory` for this process (created if needed); False when this process already held it."""
    key = directory.resolve()
    if key in _HELD:
        return False
    lock = directory / LOCK_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        held = FileLock(lock, timeout=0, thread_local=False, preserve_lock_file=True, on_acquired=_write_pid)
        held.acquire()
    except Timeout:
        raise UserError(
            f"run dir {directory} is in use: {_holder(lock)} holds {lock} (wait for that run to end, or choose "
            "another hydra.run.dir)"
        ) from None
    except OSError as e:  # a read-only file system, no permission, a full disk: no run can write there
        raise UserError(unwritable(directory, e)) from None
    _HELD[key] = held
    return True


def _write_pid(fd: int) -> None:
    """The holder's PID in the lock file, for the refusal of a second run."""
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())


def unwritable(directory: Path, e: OSError) -> str:
    """The one line for a run dir this process cannot write into."""
    why = os.strerror(e.errno) if e.errno else " ".join(str(e).split())
    where = f" ({e.filename})" if e.filename and Path(str(e.filename)) != directory else ""
    return (
        f"run dir {directory} is not writable: {why}{where}; choose a writable hydra.run.dir "
        "(or free space there when the disk is full)"
    )


def check_creatable(directory: Path) -> None:
    """A run dir that does not exist yet must be creatable: its nearest existing ancestor a writable folder.

    Checked before Hydra creates it (Hydra's own failure is a traceback). `os.access` reports a read-only file
    system (EROFS) even to root, for whom permission bits mean nothing.
    """
    ancestor = directory
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"run dir {directory} cannot be created: {ancestor} is a file; choose another hydra.run.dir")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(unwritable(directory, OSError(_access_errno(ancestor), "", str(ancestor))))


def _access_errno(path: Path) -> int:
    """EROFS when `path` is on a read-only mount, else EACCES."""
    try:
        return errno.EROFS if os.statvfs(path).f_flag & os.ST_RDONLY else errno.EACCES
    except OSError:
        return errno.EACCES


def release(directory: Path) -> None:
    held = _HELD.pop(directory.resolve(), None)
    if held is not None:
        held.release()


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the run dir's lock for the block (a lock this process already holds is kept, not re-taken)."""
    taken = acquire(directory)
    try:
        yield
    finally:
        if taken:
            release(directory)


def status(directory: Path) -> str | None:
    """The `status` of `directory/results.json`, or None when there is none (or it is unreadable)."""
    if not (directory / FILE).is_file():
        return None
    try:
        return read(directory / FILE).status
    except UserError:  # damaged: its own word still counts, so a completed run's file is never replaced
        try:
            results = json.loads((directory / FILE).read_text())
        except (OSError, ValueError):
            return None
        return str(results.get("status")) if isinstance(results, dict) else None


def refuse_completed(directory: Path, resuming: bool, overwrite: bool) -> None:
    """A completed run's directory takes a new run only to resume it or with `overwrite=true`."""
    if resuming or overwrite or status(directory) != "completed":
        return
    raise UserError(
        f"run dir {directory} holds a completed run (its results.json): resume it with resume=last, pass "
        "overwrite=true to replace it, or choose another hydra.run.dir"
    )


def write_record(directory: Path, record: RunRecord) -> str | None:
    """Write a failure / interruption record as results.json; never raises, never replaces a completed one.

    Returns why nothing was written (None when it was): the caller is already reporting an error, and a
    second one (the disk that made the run fail is still full) must not bury it.
    """
    if status(directory) == "completed":
        return "the completed results.json there was kept"
    try:
        record.write(directory)
    except Exception as e:  # noqa: BLE001 - anything here would hide the error being reported
        return f"could not write {directory / 'results.json'}: {type(e).__name__}: {' '.join(str(e).split())}"
    return None
