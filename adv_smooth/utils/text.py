"""Small helpers for the words of printed lines."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 group`, `3 groups`, `0 groups`: the noun in the plural only when the count is not 1."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
