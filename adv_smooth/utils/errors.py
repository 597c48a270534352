"""User-facing errors.

A `UserError` is a mistake in what the user asked for (a bad config value, a missing file). The entry
points print its message as one line and exit with status 2 instead of showing a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class UserError(Exception):
    """A mistake by the user: reported as one line, never as a traceback."""


def require(condition: bool, key: str, value: object, allowed: str) -> None:
    """Raise a `UserError` naming the key, the bad value and what is allowed, unless `condition`."""
    if not condition:
        raise UserError(f"{key}={value!r} is invalid: {allowed}")


# Typed checks for constructors: each object validates its own options (naming the user's config key), so the
# start-up checks in `adv_smooth.config.checks` keep only what no single object can see.
def is_int(value: object) -> bool:
    """An int that is not a bool (True == 1 in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require_int(key: str, value: object, low: int = 0, allow_none: bool = False) -> None:
    """An integer >= `low` (or None when `allow_none`)."""
    if allow_none and value is None:
        return
    require(is_int(value) and value >= low, key, value, f"an integer >= {low}" + (", or null" if allow_none else ""))


def require_bool(key: str, value: object) -> None:
    require(isinstance(value, bool), key, value, "true or false")


def require_choice(key: str, value: object, choices: Sequence[object]) -> None:
    """One of `choices` (e.g. `typing.get_args` of a `Literal`)."""
    require(value in choices and not isinstance(value, bool), key, value, f"one of {', '.join(map(str, choices))}")
