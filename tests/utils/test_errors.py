"""The shared typed checks state an upper bound, and the start-up net refuses numbers no knob takes."""

from __future__ import annotations

import pytest

from adv_smooth.utils.errors import (
    MAX_COUNT,
    MAX_INT,
    UserError,
    out_of_range,
    require_int,
    require_number,
)


def test_require_int_states_its_upper_bound() -> None:
    require_int("dataset.batch_size", MAX_COUNT, 1)
    with pytest.raises(
        UserError, match=rf"dataset.batch_size=99999999999999999999 is invalid: an integer in \[1, {MAX_COUNT}\]"
    ):
        require_int("dataset.batch_size", 99999999999999999999, 1)
    with pytest.raises(UserError, match=r"an integer in \[0, 8\], or null"):
        require_int("k", 9, 0, allow_none=True, high=8)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e23, -1.0, True])
def test_require_number_refuses_what_no_knob_takes(value: object) -> None:
    with pytest.raises(UserError, match=r"is invalid: a number in \[0, 1e\+06\]"):
        require_number("optim.weight_decay", value, 0)


@pytest.mark.parametrize(
    ("value", "wrong"),
    [
        (MAX_INT + 1, "an integer of magnitude at most"),
        (-(10**20), "an integer of magnitude at most"),
        (float("inf"), "a finite number"),
        (float("nan"), "a finite number"),
        (1e23, "a finite number of magnitude at most 1e+06"),
    ],
)
def test_out_of_range(value: object, wrong: str) -> None:
    assert wrong in (out_of_range(value) or "")


@pytest.mark.parametrize("value", [MAX_INT, -10, 0.5, 1e6, True, "inf", None])
def test_in_range(value: object) -> None:
    assert out_of_range(value) is None
