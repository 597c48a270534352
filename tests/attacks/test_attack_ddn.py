"""DDN: never below the linear optimum, stronger than untargeted FMN, a consistent minimal-SNR curve, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from adv_smooth.attacks import measured_snr_db
from adv_smooth.attacks.ddn import DDN
from adv_smooth.utils.errors import UserError

LEVELS = [40.0, 30.0, 20.0, 15.0]


def _linear_problem(n: int = 64, dims: int = 20, classes: int = 10) -> tuple[nn.Linear, Tensor, Tensor]:
    """A random linear classifier whose boundaries pass near the box centre, inputs in [0.4, 0.6]."""
    torch.manual_seed(0)
    model = nn.Linear(dims, classes)
    with torch.no_grad():
        model.bias.copy_(-model.weight.sum(dim=1) * 0.5 + 0.02 * torch.randn(classes))
    x = 0.4 + 0.2 * torch.rand(n, dims)
    return model, x, model(x).argmax(dim=1).detach()


def _l2_optimum(model: nn.Linear, x: Tensor, y: Tensor) -> Tensor:
    """min_j margin_j / ||w_y - w_j||_2: the exact minimal L2 perturbation of a linear classifier."""
    with torch.no_grad():
        gaps = model(x).gather(1, y[:, None]) - model(x)
        distances = gaps / (model.weight[y][:, None, :] - model.weight[None]).norm(dim=2).clamp_min(1e-12)
        distances[torch.arange(len(y)), y] = math.inf
    return distances.min(dim=1).values


def test_ddn_never_reports_less_than_the_linear_optimum() -> None:
    """Every output is adversarial and no larger than the search claims, and none beats the closed form (the
    norm accounting is right); DDN's absolute step sizes (alpha from 1 to 0.01 pixel units) leave it above the
    optimum where that is tiny, as adv-lib's DDN is (the same ratios, measured)."""
    model, x, y = _linear_problem()
    optimum = _l2_optimum(model, x, y)
    assert optimum.max() < 0.4, "the box must never bind for the closed form to hold"
    result = DDN().craft(model, x, y, -100.0)  # a ball this large holds the minimal delta unchanged
    assert (model(result.x_adv).argmax(dim=1) != y).all()
    size = result.delta.flatten(1).norm(dim=1)
    assert (size >= optimum * (1 - 1e-4)).all() and (size / optimum).median() < 1.5
    snr = 20 * torch.log10(x.norm(dim=1) / size)
    assert torch.allclose(result.min_snr_db, snr, atol=1e-3), "min_snr_db is the SNR of the perturbation returned"


def test_ddn_breaks_more_than_untargeted_fmn_on_a_real_network(digits) -> None:
    """Why the minimal preset uses DDN: its cross-entropy ascent weighs every class, where FMN's logit gap can
    settle on a far class's boundary (benchmarks/minimal_norm.py compares it with adv-lib's DDN + FMN)."""
    from adv_smooth.attacks.fmn import FMN

    model, x, y = digits
    with torch.no_grad():
        clean = model(x).argmax(dim=1) == y
    ddn = DDN().craft(model, x, y, 30.0).min_snr_db
    fmn = FMN(norm="l2", targets=0).craft(model, x, y, 30.0).min_snr_db
    for level in (25.0, 20.0, 15.0):
        assert ((ddn < level) & clean).sum() < ((fmn < level) & clean).sum(), level


def test_ddn_min_snr_curve_is_consistent_and_stays_in_the_ball(digits) -> None:
    model, x, y = digits
    attack = DDN(steps=40)
    results = attack.craft_levels(model, x[:128], y[:128], LEVELS)
    min_snr = results[0].min_snr_db
    with torch.no_grad():
        clean = model(x[:128]).argmax(dim=1) == y[:128]
    assert torch.isinf(min_snr[~clean]).all() and (min_snr[~clean] > 0).all(), "+inf where wrong clean"
    for level, result in zip(LEVELS, results):
        assert (measured_snr_db(result.z, result.z + result.delta) >= level - 1e-3).all()
        with torch.no_grad():
            broken = model(result.x_adv).argmax(dim=1) != y[:128]
        fits = clean & (min_snr >= level)  # the minimal delta fits this level's ball: it is returned as is
        assert broken[fits].all(), level
    assert ((min_snr < 20) & clean).float().mean() < clean.float().mean(), "it breaks images at 20 dB"


def test_ddn_is_deterministic_on_images_with_gradients(digits) -> None:
    model, x, y = digits
    a = DDN(steps=10).craft(model, x[:32], y[:32], 30.0).min_snr_db
    b = DDN(steps=10).craft(model, x[:32], y[:32], 30.0).min_snr_db
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"norm": "linf"}, "norm='linf' is invalid: DDN is an L2 attack"),
        ({"steps": 0}, "steps=0 is invalid"),
        ({"steps": 1.5}, "steps=1.5 is invalid"),
        ({"gamma": 1.0}, "gamma=1.0 is invalid"),
        ({"init_norm": math.inf}, "init_norm=inf is invalid"),
        ({"alpha_final": 0}, "alpha_final=0 is invalid"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DDN(**options)
