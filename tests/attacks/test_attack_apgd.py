"""APGD: reaches the closed-form optimum on a linear model, and agrees with AutoAttack's own code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adv_smooth.attacks.apgd import APGD, checkpoints, dlr_loss
from adv_smooth.robustness.batch import robust_predictions
from adv_smooth.utils.errors import UserError


def _linear(d: int = 20, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    model = nn.Linear(d, 2)
    with torch.no_grad():
        model.bias.copy_(torch.tensor([3.0, -3.0]))  # every input is confidently class 0: nothing breaks
    return model


@pytest.mark.parametrize(("norm", "dual"), [("l2", 2), ("linf", 1)])
def test_apgd_reaches_the_linear_optimum(norm: str, dual: int) -> None:
    """Two classes, CE monotone in the margin: the best perturbation moves the margin by eps * ||w1 - w0||_dual."""
    model = _linear()
    x = 0.4 + 0.2 * torch.rand(16, 20, generator=torch.Generator().manual_seed(1))  # box never binds
    y = torch.zeros(16, dtype=torch.long)
    eps = {"l2": {"radius": 0.05}, "linf": {"eps_255": 0.02 * 255}}[norm]
    result = APGD(norm=norm, budget="fixed", steps=50, **eps, generator=torch.Generator().manual_seed(0)).craft(
        model, x, y
    )
    w = model.weight[1] - model.weight[0]
    with torch.no_grad():
        gained = (result.x_adv - x) @ w
    optimum = result.eps.flatten() * w.norm(p=dual)
    assert (gained >= 0.99 * optimum).all(), (gained / optimum).min()
    assert (gained <= optimum * (1 + 1e-5)).all()


def test_checkpoints_follow_the_papers_sequence() -> None:
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


def test_dlr_is_scale_invariant() -> None:
    logits = torch.randn(5, 10)
    y = torch.arange(5)
    torch.testing.assert_close(dlr_loss(logits, y), dlr_loss(7.0 * logits, y))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("norm", "budget", "ref_eps"), [("linf", {"eps_255": 16.0}, 16 / 255), ("l2", {"radius": 1.0}, 1.0)]
)
@pytest.mark.parametrize("targets", [0, 3])
def test_apgd_agrees_with_pyautoattack(digits, norm: str, budget: dict, ref_eps: float, targets: int) -> None:
    """Robust accuracy within 1 point of AutoAttack's implementation at the same fixed budget."""
    autopgd = pytest.importorskip("pyautoattack.autopgd_base")
    model, x, y = digits
    if targets:
        ref = autopgd.APGDAttack_targeted(
            model,
            n_iter=100,
            norm=norm.capitalize() if norm == "l2" else "Linf",
            eps=ref_eps,
            seed=0,
            n_target_classes=targets,
        )
    else:
        ref = autopgd.APGDAttack(model, n_iter=100, norm="L2" if norm == "l2" else "Linf", eps=ref_eps, seed=0)
    with torch.no_grad():
        ref_acc = (model(ref.perturb(x, y)).argmax(1) == y).float().mean().item()
    ours = APGD(
        norm=norm,
        budget="fixed",
        steps=100,
        targets=targets,
        loss="dlr" if targets else "ce",
        generator=torch.Generator().manual_seed(0),
        **budget,
    )
    acc = robust_predictions(model, x, y, ours, [None])["correct"][None].float().mean().item()
    assert abs(acc - ref_acc) <= 0.01, (acc, ref_acc)


def test_apgd_is_at_least_as_strong_as_pgd_on_digits(digits) -> None:
    from adv_smooth.attacks import PGD

    model, x, y = digits
    g = torch.Generator
    pgd = robust_predictions(model, x, y, PGD(norm="l2", generator=g().manual_seed(0)), [20.0])["correct"][20.0]
    apgd = robust_predictions(model, x, y, APGD(norm="l2", steps=30, generator=g().manual_seed(0)), [20.0])
    assert apgd["correct"][20.0].float().mean() <= pgd.float().mean() + 0.005


def test_targeted_needs_four_classes(resnet) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(UserError, match="at least 4 classes"):
        APGD(targets=2, steps=2).craft(model, torch.rand(2, 3, 2, 2), torch.tensor([0, 1]), 30.0)
