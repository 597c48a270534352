"""`state_mismatch`: the first way a checkpoint's weights do not fit a network, in one line (issue 26, item 9)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adv_smooth.utils.checkpoints import state_mismatch


def _net(width: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.Flatten(), nn.Linear(width, classes))


@pytest.mark.parametrize(
    ("saved", "wanted", "found"),
    [
        ((8, 10), (4, 10), "'0.weight' has shape (8, 3, 3, 3) in it, the model expects (4, 3, 3, 3)"),
        ((4, 100), (4, 10), "'2.weight' has shape (100, 4) in it, the model expects (10, 4)"),
        ((4, 10), (4, 10), None),
    ],
    ids=["another width: the first layer", "another class count: the classifier", "fits"],
)
def test_the_first_differing_tensor_and_both_shapes(saved: tuple, wanted: tuple, found: str | None) -> None:
    assert state_mismatch(_net(*saved).state_dict(), _net(*wanted).state_dict()) == found


def test_missing_extra_and_odd_entries() -> None:
    expected = _net(4, 10).state_dict()
    fewer = {k: v for k, v in expected.items() if k != "2.bias"}
    assert state_mismatch(fewer, expected) == "it lacks tensor '2.bias'"
    assert state_mismatch({**expected, "3.weight": torch.zeros(1)}, expected) == "it has an extra tensor '3.weight'"
    assert state_mismatch({**expected, "0.bias": 3}, expected) == "its '0.bias' is not a tensor (int)"
    assert state_mismatch([1, 2], expected) == "its state_dict is a list, not a mapping of tensor names to tensors"


def test_torch_puts_the_detail_after_the_first_line() -> None:
    """Why the helper exists: torch's first line is only a header, what a one-line message used to keep."""
    with pytest.raises(RuntimeError) as info:
        _net(4, 10).load_state_dict(_net(8, 10).state_dict())
    first = str(info.value).splitlines()[0]
    assert "shape" not in first and "0.weight" not in first
