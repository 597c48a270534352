"""User-facing errors.

A `UserError` is a mistake in what the user asked for (a bad config value, a missing file). The entry
points print its message as one line and exit with status 2 instead of showing a traceback.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path


class UserError(Exception):
    """A mistake by the user: reported as one line, never as a traceback."""


def require(condition: bool, key: str, value: object, allowed: str) -> None:
    """Raise a `UserError` naming the key, the bad value and what is allowed, unless `condition`."""
    if not condition:
        raise UserError(f"{key}={value!r} is invalid: {allowed}")


# Typed checks for constructors: each object validates its own options (naming the user's config key), so the
# start-up checks in `adv_smooth.app.preflight.checks` keep only what no single object can see. Every check has an upper
# bound, stated in its message: a value no run can use (a batch of 10**20 images, 10**23 epochs, an infinite step)
# would otherwise pass here and crash, or run forever, later.
MAX_COUNT = 10**7  # counts (batch sizes, epochs, steps, workers): far above any real run, far below overflow
MAX_INT = 2**32 - 1  # the largest integer any knob takes (a seed); beyond it torch and C code overflow
MAX_FLOAT = 1e6  # no decimal knob (rates, weights, SNRs in dB, budgets) means anything near it
MAX_ITERATIONS = 100_000  # an attack's steps, restarts, queries: AutoAttack's strongest settings use a few thousand


def is_int(value: object) -> bool:
    """An int that is not a bool (True == 1 in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require_int(
    key: str, value: object, low: int = 0, allow_none: bool = False, high: int = MAX_COUNT, meaning: str = ""
) -> None:
    """An integer in [`low`, `high`] (or None when `allow_none`); `meaning` says what it counts, in the message."""
    if allow_none and value is None:
        return
    allowed = (
        f"an integer in [{low}, {high}]" + (f" ({meaning})" if meaning else "") + (", or null" if allow_none else "")
    )
    require(is_int(value) and low <= value <= high, key, value, allowed)


def require_number(key: str, value: object, low: float, high: float = MAX_FLOAT, low_open: bool = False) -> None:
    """A finite number in [`low`, `high`] (`(low, high]` when `low_open`)."""
    above = is_number(value) and (value > low if low_open else value >= low)
    allowed = f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"
    require(above and value <= high, key, value, allowed)


def out_of_range(value: object) -> str | None:
    """What is wrong with a number no knob can take (an integer beyond `MAX_INT`, a decimal that is infinite, nan
    or beyond `MAX_FLOAT`), or None: the start-up checks' net under every numeric setting, checked or not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) > MAX_INT:
        return f"an integer of magnitude at most {MAX_INT} (no setting takes more)"
    if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= MAX_FLOAT):
        return f"a finite number of magnitude at most {MAX_FLOAT:g} (no setting takes more)"
    return None


def require_bool(key: str, value: object) -> None:
    require(isinstance(value, bool), key, value, "true or false")


def require_choice(key: str, value: object, choices: Sequence[object]) -> None:
    """One of `choices` (e.g. `typing.get_args` of a `Literal`)."""
    require(value in choices and not isinstance(value, bool), key, value, f"one of {', '.join(map(str, choices))}")


def file_problem(path: str | Path) -> str | None:
    """Why `path` names no readable file, in words ("is a symlink loop", not the "does not exist" that
    `Path.exists()` makes of every `stat` failure); None when it is a file."""
    mode, problem = _stat(Path(path))
    if problem is not None or mode is None:
        return problem
    return "is not a file (it is a folder)" if stat.S_ISDIR(mode) else None


def folder_problem(path: str | Path) -> str | None:
    """`file_problem` for a folder: None when `path` is one."""
    mode, problem = _stat(Path(path))
    if problem is not None or mode is None:
        return problem
    return None if stat.S_ISDIR(mode) else "is not a folder (it is a file)"


def _stat(path: Path) -> tuple[int | None, str | None]:
    """(mode, None), or (None, why `stat` failed, in words)."""
    try:
        return os.stat(path).st_mode, None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None, "is a symlink loop (following its links never reaches a file or folder)"
        if e.errno == errno.ENOENT and path.is_symlink():
            return None, f"is a broken symlink (to {os.readlink(path)}, which does not exist)"
        if e.errno == errno.ENOENT:
            return None, "does not exist"
        return None, f"cannot be read ({os.strerror(e.errno) if e.errno else e})"
