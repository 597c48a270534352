"""User-facing errors.

A `UserError` is a mistake in what the user asked for (a bad config value, a missing file). The entry
points print its message as one line and exit with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake by the user: reported as one line, never as a traceback."""


def require(condition: bool, key: str, value: object, allowed: str) -> None:
    """Raise a `UserError` naming the key, the bad value and what is allowed, unless `condition`."""
    if not condition:
        raise UserError(f"{key}={value!r} is invalid: {allowed}")
