"""The momentum reset (`optim.reset_momentum`): one optimizer whose state is cleared at each milestone trains
exactly like the original code, which built a new optimizer for each learning-rate period."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from adv_smooth.lightning.schedules import EpochSchedule, MultiStepLR
from adv_smooth.utils.errors import UserError

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


def _drops(milestones: list, max_epochs: int) -> list[float]:
    """The learning rate of every epoch of a `max_epochs` run, as Lightning steps the scheduler (once per epoch)."""
    optimizer = torch.optim.SGD(_model().parameters(), lr=0.1)
    scheduler = MultiStepLR(optimizer, milestones=milestones, gamma=0.1, max_epochs=max_epochs)
    lrs = []
    for _ in range(max_epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(
    ("fractions", "max_epochs", "epochs"),
    [([0.6], 8, [5]), ([0.6], 15, [9]), ([0.6], 55, [33]), ([0.5, 0.75], 8, [4, 6]), ([0.6], 2, [1]), ([0.9], 3, [2])],
)
def test_fractions_drop_where_their_epochs_do(fractions: list[float], max_epochs: int, epochs: list[int]) -> None:
    """`[0.6]` of 15 epochs is `[9]`: the same learning rate at every epoch; within [1, max_epochs - 1]."""
    assert _drops(fractions, max_epochs) == _drops(epochs, max_epochs)
    assert _drops(fractions, max_epochs)[-1] < 0.1  # the run always ends after a drop (at least 2 epochs)


def test_the_default_schedule_follows_trainer_max_epochs(tmp_path) -> None:
    """The composed default (`optim=sgd`, `[0.6]`): a 15-epoch run drops after 9 (the default 8 after 5, as the
    study's recipe did: the parametrized cases above)."""
    import hydra

    from tests.conftest import compose_config

    cfg = compose_config("trainer.max_epochs=15", output_dir=tmp_path)
    optimizer = torch.optim.SGD(_model().parameters(), lr=cfg.optim.lr)
    scheduler = hydra.utils.instantiate(cfg.optim.scheduler)(optimizer=optimizer)
    assert sorted(scheduler.milestones) == [9]


@pytest.mark.parametrize(
    ("milestones", "max_epochs", "warns"),
    [([5], 2, True), ([2], 2, True), ([1, 3], 3, True), ([1], 2, False), ([4], 8, False), ([], 2, False)]
    + [([0.6], 1, False), ([0.6], 2, False)],
)
def test_warning_for_a_drop_at_or_after_the_last_epoch(milestones: list, max_epochs: int, warns: bool) -> None:
    from adv_smooth.lightning.schedules import unreached_milestones

    line = unreached_milestones(milestones, max_epochs)
    assert (line is not None) == warns
    if warns:
        assert "\n" not in line and f"trainer.max_epochs={max_epochs}" in line
        assert f"after {', '.join(str(m) for m in milestones if m >= max_epochs)} epochs" in line


@pytest.mark.parametrize("milestones", [[0.5, 3], [1.0], [0.6, 0.3], [-1], [5.0]])
def test_milestones_no_run_could_use_are_refused(milestones: list) -> None:
    from adv_smooth.lightning.schedules import resolve_milestones
    from adv_smooth.utils.errors import UserError

    with pytest.raises(UserError, match=r"^milestones=.* is invalid: a strictly increasing list of epochs"):
        resolve_milestones(milestones, 10)


def _lrs(scheduler: torch.optim.lr_scheduler.LRScheduler, epochs: int) -> list[float]:
    rates = []
    for _ in range(epochs):
        rates.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("epochs", [3, 8, 40])
def test_cosine_shape_is_torchs_cosine_annealing_at_any_length(epochs: int) -> None:
    """`optim.schedule=cosine`: the rate of torch's CosineAnnealingLR over trainer.max_epochs, epoch by epoch (no
    milestone to place, so a 3-epoch run and a 40-epoch run both start at the peak and end near 0)."""
    ours = EpochSchedule(torch.optim.SGD(_model().parameters(), lr=0.1), "cosine", max_epochs=epochs)
    torchs = torch.optim.lr_scheduler.CosineAnnealingLR(torch.optim.SGD(_model().parameters(), lr=0.1), T_max=epochs)
    assert _lrs(ours, epochs) == pytest.approx(_lrs(torchs, epochs), abs=1e-12)
    assert ours.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # annealed to 0 at the end


def test_step_shape_is_the_study_drop_at_a_fraction_of_the_run() -> None:
    """`optim.schedule=step` (the default): x0.01 after 60 % of 8 epochs, i.e. 5 epochs at 0.1 and 3 at 0.001."""
    scheduler = EpochSchedule(torch.optim.SGD(_model().parameters(), lr=0.1), "step", [0.6], 0.01, max_epochs=8)
    assert _lrs(scheduler, 8) == pytest.approx([0.1] * 5 + [0.001] * 3)


def test_unknown_shape_is_one_line_naming_the_key() -> None:
    with pytest.raises(UserError, match="^shape=.linear."):
        EpochSchedule(torch.optim.SGD(_model().parameters(), lr=0.1), "linear", max_epochs=3)
