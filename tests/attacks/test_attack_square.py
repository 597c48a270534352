"""Square attack: stays in its ball, breaks images PGD cannot when gradients are masked, refuses bad input."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from adv_smooth.attacks import PGD, measured_snr_db
from adv_smooth.attacks.square import Square, square_bump, square_fraction
from adv_smooth.robustness.batch import robust_predictions


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _ZeroGradRound(torch.autograd.Function):
    """round(8 x) / 8 whose backward is zero: the textbook masked gradient."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return torch.round(x * 8) / 8

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return torch.zeros_like(grad)


class Quantized(nn.Module):
    """A model behind a non-differentiable quantizing input layer."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(_ZeroGradRound.apply(x))


class Counting(nn.Module):
    """Counts the images the wrapped model is queried on."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.images = 0

    def forward(self, x: Tensor) -> Tensor:
        self.images += x.shape[0]
        return self.model(x)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("space", ["pixel", "normalized"])
def test_square_stays_in_its_ball_and_in_range(resnet, labels, norm: str, space: str) -> None:
    x = torch.rand(8, 3, 16, 16)  # values near 0 and 1: clipping binds
    results = Square(norm=norm, space=space, queries=30, generator=_seeded()).craft_levels(resnet, x, labels, [40, 30])
    for level, result in zip([40, 30], results):
        assert (measured_snr_db(result.z, result.z + result.delta) >= level - 1e-3).all()
        assert (Square(norm=norm).threat.norm(result.delta) <= result.eps.flatten() * (1 + 1e-5)).all()
        assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1


def test_square_is_seeded(digits) -> None:
    model, x, y = digits
    x, y = x[:16], y[:16]
    first = Square(norm="l2", queries=50, generator=_seeded(3)).craft(model, x, y, 20.0)
    again = Square(norm="l2", queries=50, generator=_seeded(3)).craft(model, x, y, 20.0)
    torch.testing.assert_close(first.x_adv, again.x_adv, rtol=0, atol=0)


def test_square_stops_querying_broken_images(digits) -> None:
    """Images already misclassified at the initial point are never queried again."""
    model, x, y = digits
    wrong = (model(x[:8]).argmax(dim=1) + 1) % 10  # every image is "broken" under these labels
    counting = Counting(model)
    Square(queries=100, generator=_seeded()).craft(counting, x[:8], wrong, 30.0)
    assert counting.images == 8


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_square_breaks_images_pgd_cannot_behind_masked_gradients(digits, norm: str) -> None:
    model, x, y = digits
    masked = Quantized(model)
    x, y, level = x[:64], y[:64], 17.0
    clean = (masked(x).argmax(dim=1) == y).float().mean().item()
    pgd = robust_predictions(masked, x, y, PGD(norm=norm, generator=_seeded()), [level])["correct"][level]
    square = robust_predictions(masked, x, y, Square(norm=norm, queries=300, generator=_seeded()), [level])
    pgd_acc, square_acc = pgd.float().mean().item(), square["correct"][level].float().mean().item()
    assert clean > 0.9
    assert pgd_acc >= clean - 0.05, "zero gradients: PGD should be stuck near clean accuracy"
    assert square_acc <= pgd_acc - 0.2, f"Square {square_acc:.3f} should clearly beat PGD {pgd_acc:.3f}"


def test_p_schedule_and_bump() -> None:
    assert square_fraction(0.8, 0, 1000) == 0.8
    assert square_fraction(0.8, 999, 1000) == pytest.approx(0.8 / 512)
    values = [square_fraction(0.8, i, 1000) for i in range(1000)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    bump = square_bump(5, torch.device("cpu"), torch.float32)
    assert bump.norm().item() == pytest.approx(1.0)
    assert (bump[:2] > 0).all() and (bump[2:] < 0).all()


def test_square_matches_or_beats_autoattack(digits) -> None:
    """Independent check against AutoAttack's Square (pyautoattack, a dev extra) at a fixed L2 radius."""
    reference = pytest.importorskip("pyautoattack.square")
    model, x, y = digits
    x, y = x[:100], y[:100]
    torch.manual_seed(0)
    theirs = reference.SquareAttack(model, norm="L2", n_queries=300, eps=0.5, device="cpu", seed=0).perturb(x, y)
    ours = Square(norm="l2", budget="fixed", radius=0.5, queries=300, generator=_seeded()).perturb(model, x, y)
    theirs_acc = (model(theirs).argmax(dim=1) == y).float().mean().item()
    ours_acc = (model(ours).argmax(dim=1) == y).float().mean().item()
    assert ours_acc <= theirs_acc + 0.03
