"""The momentum reset (`optim.reset_momentum`): one optimizer whose state is cleared at each milestone trains
exactly like the original code, which built a new optimizer for each learning-rate period."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from adv_smooth.lightning.schedules import MultiStepLR

PERIODS = [(0, 2, 0.1), (2, 4, 0.01), (4, 6, 0.001)]  # (start epoch, end epoch, lr), like svhn.py's loop


def _data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 5, generator=g), torch.randn(8, 1, generator=g)) for _ in range(3)]


def _model() -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(5, 1)


def _epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    for x, y in _data():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


def _original(make: Callable[..., torch.optim.Optimizer]) -> torch.nn.Module:
    model = _model()
    for start, end, lr in PERIODS:
        optimizer = make(model.parameters(), lr=lr)  # a new optimizer per period: momentum starts at zero
        for _ in range(start, end):
            _epoch(model, optimizer)
    return model


def _scheduled(make: Callable[..., torch.optim.Optimizer], reset: bool) -> torch.nn.Module:
    model = _model()
    optimizer = make(model.parameters(), lr=0.1)
    scheduler = MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1, reset_state=reset)
    for _ in range(6):
        _epoch(model, optimizer)
        scheduler.step()  # Lightning's interval="epoch"
    return model


@pytest.mark.parametrize(
    "make",
    [
        lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=5e-4),
        lambda p, lr: torch.optim.Adam(p, lr=lr),
    ],
    ids=["sgd", "adam"],
)
def test_reset_state_reproduces_a_new_optimizer_per_period(make: Callable[..., torch.optim.Optimizer]) -> None:
    reference = _original(make)
    torch.testing.assert_close(_scheduled(make, reset=True).weight, reference.weight, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(_scheduled(make, reset=False).weight, reference.weight, rtol=1e-6, atol=1e-7)


def test_state_cleared_only_at_milestones_and_lr_as_multisteplr() -> None:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1, reset_state=True)
    lrs, states = [], []
    for _ in range(5):
        _epoch(model, optimizer)
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
        states.append(len(optimizer.state))
    assert lrs == pytest.approx([0.1, 0.01, 0.01, 0.001, 0.001])
    assert states == [2, 0, 2, 0, 2]  # 2 parameters' momentum buffers; gone right after each drop
    restored = MultiStepLR(torch.optim.SGD(model.parameters(), lr=0.1), milestones=[2, 4])
    restored.load_state_dict(scheduler.state_dict())
    assert restored.reset_state is True  # a resumed run keeps resetting
