"""Threat models: projections land in the ball, steps have the asked size, random starts stay inside."""

from __future__ import annotations

import math

import pytest
import torch

from adv_smooth.attacks import FGSM, PGD, GaussianNoise, measured_snr_db, snr_radius
from adv_smooth.attacks.apgd import APGD
from adv_smooth.attacks.threat import L2Ball, LinfBall


def _draw(like: torch.Tensor, law: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(like.shape, generator=g) if law == "uniform" else torch.randn(like.shape, generator=g)


@pytest.mark.parametrize("ball", [LinfBall(), L2Ball()], ids=["linf", "l2"])
def test_project_step_and_random_start(ball) -> None:
    delta = torch.randn(6, 3, 4, 4)
    eps = torch.tensor([0.01, 0.1, 0.5, 1.0, 2.0, 100.0]).view(-1, 1, 1, 1)
    projected = ball.project(delta, eps)
    assert (ball.norm(projected) <= eps.flatten() * (1 + 1e-6)).all()
    inside = ball.norm(delta) <= eps.flatten()
    assert torch.equal(projected[inside], delta[inside]), "points already inside are left alone"
    assert torch.allclose(ball.norm(projected[~inside]), eps.flatten()[~inside]), "others land on the boundary"
    step = ball.step(torch.randn(6, 3, 4, 4), eps)
    torch.testing.assert_close(ball.norm(step), eps.flatten())
    start = ball.random_start(delta, eps, _draw)
    assert (ball.norm(start) <= eps.flatten() * (1 + 1e-6)).all() and (ball.norm(start) > 0).all()


def test_l2_projection_is_the_nearest_point() -> None:
    delta, eps = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0]])
    torch.testing.assert_close(L2Ball().project(delta, eps), torch.tensor([[0.6, 0.8]]))


def test_snr_radius_is_the_l2_budget_and_the_cube_is_inscribed() -> None:
    x = torch.rand(4, 3, 8, 8)
    r = snr_radius(x, 33.0)
    torch.testing.assert_close(r.flatten(), x.flatten(1).norm(dim=1) * 10 ** (-33 / 20))
    cube_corner = LinfBall().radius_from_l2(r, x[0].numel()) * torch.ones_like(x)
    torch.testing.assert_close(L2Ball().norm(cube_corner), r.flatten())


ATTACKS = {
    "fgsm": lambda norm: FGSM(norm=norm),
    "pgd": lambda norm: PGD(norm=norm, steps=3, generator=torch.Generator().manual_seed(0)),
    "apgd": lambda norm: APGD(norm=norm, steps=5, generator=torch.Generator().manual_seed(0)),
    "apgd_t": lambda norm: APGD(norm=norm, steps=3, targets=2, loss="dlr", generator=torch.Generator().manual_seed(0)),
    "noise": lambda norm: GaussianNoise(norm=norm, generator=torch.Generator().manual_seed(0)),
}


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("space", ["pixel", "normalized"])
def test_no_attack_leaves_its_ball(resnet, labels, name: str, norm: str, space: str) -> None:
    """Measured SNR >= nominal - 1e-3 dB before and after clamping, and the result is a valid image."""
    x = torch.rand(8, 3, 16, 16)  # touches the borders: clamping is exercised
    attack = ATTACKS[name](norm)
    attack.space = space
    for level, result in zip([50.0, 33.0, 20.0], attack.craft_levels(resnet, x, labels, [50.0, 33.0, 20.0])):
        assert (measured_snr_db(result.z, result.z + result.delta) >= level - 1e-3).all(), (name, level)
        assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
        z_adv = result.z + (result.x_adv - x) / (1 if space == "pixel" else resnet.std)
        assert (measured_snr_db(result.z, z_adv) >= level - 1e-3).all()


def test_fixed_budgets_use_the_literatures_units(resnet, images, labels) -> None:
    linf = PGD(budget="fixed", eps_255=8, steps=2).craft(resnet, images, labels)
    assert linf.delta.abs().max() <= 8 / 255 + 1e-7 and torch.all(linf.eps == 8 / 255)
    l2 = PGD(budget="fixed", norm="l2", radius=0.5, steps=2).craft(resnet, images, labels)
    assert (l2.delta.flatten(1).norm(dim=1) <= 0.5 + 1e-6).all() and torch.all(l2.eps == 0.5)


def test_fgsm_l2_is_the_normalized_gradient_on_the_sphere(resnet, images, labels) -> None:
    result = FGSM(norm="l2").craft(resnet, images, labels, 30.0)
    assert measured_snr_db(images, images + result.delta).sub(30.0).abs().max() < 1e-3
    assert not math.isnan(float(result.delta.sum()))
