"""The report's training law, `magnitude="clipped_normal"`: m = |clip(N(0, sigma), -2 sigma, 2 sigma)|, sigma = eps.

What svhn.py drew (`nn.init.normal(noise, 0, eps)`, `clamp(noise, -2 eps, 2 eps)`, `abs`): clipped, not
truncated, so 4.55 % of the pixels sit exactly at 2 sigma. The analytic moments are E[m] = 0.781 sigma,
RMS 0.959 sigma, max 2 sigma.
"""

from __future__ import annotations

import math

import pytest
import torch
from attack_helpers import interior_images, tiny_resnet
from scipy import stats

from adv_smooth.attacks.budget import snr_eps
from adv_smooth.attacks.fgsm import CLIPPED_HALF_NORMAL_MEAN, CLIPPED_HALF_NORMAL_RMS, FGSM

EPS = 0.010732325  # the report's global SVHN budget (the mean 33 dB eps)


def _magnitudes(n: int = 400_000, seed: int = 0) -> torch.Tensor:
    attack = FGSM(magnitude="clipped_normal", generator=torch.Generator().manual_seed(seed))
    like = torch.empty(n, dtype=torch.float64)
    return attack.magnitudes(torch.tensor(EPS, dtype=torch.float64), like)


def below_edge_cdf(t: object, sigma: float) -> object:
    """P(m <= t | m < 2 sigma) of the clipped law: the half-normal CDF renormalized below the atom at 2 sigma.

    scipy's KS test assumes a continuous CDF, so the atom is tested apart (`test_clipped_not_truncated_...`).
    """
    t = torch.as_tensor(t, dtype=torch.float64).clamp(0, 2 * sigma)
    return (torch.erf(t / (sigma * math.sqrt(2.0))) / math.erf(math.sqrt(2.0))).numpy()


def test_analytic_constants() -> None:
    assert abs(CLIPPED_HALF_NORMAL_MEAN - 0.7809) < 1e-4
    assert abs(CLIPPED_HALF_NORMAL_RMS - 0.9594) < 1e-4
    # independent check: numerical integration of min(|z|, 2) against the normal density
    z = torch.linspace(-12, 12, 2_400_001, dtype=torch.float64)
    density = torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    clipped = z.abs().clamp(max=2.0)
    step = float(z[1] - z[0])
    assert float((clipped * density).sum() * step) == pytest.approx(CLIPPED_HALF_NORMAL_MEAN, rel=1e-8)
    assert math.sqrt(float((clipped**2 * density).sum() * step)) == pytest.approx(CLIPPED_HALF_NORMAL_RMS, rel=1e-8)


def test_empirical_mean_rms_and_max_match_the_report_within_1_percent() -> None:
    m = _magnitudes()
    assert m.mean().item() == pytest.approx(0.781 * EPS, rel=0.01)
    assert m.square().mean().sqrt().item() == pytest.approx(0.959 * EPS, rel=0.01)
    assert m.max().item() == pytest.approx(2 * EPS, rel=0.01)
    assert m.max().item() <= 2 * EPS * (1 + 1e-12) and m.min().item() >= 0


def test_clipped_not_truncated_mass_at_two_sigma() -> None:
    m = _magnitudes()
    at_edge = (m >= 2 * EPS * (1 - 1e-12)).double().mean().item()
    p = math.erfc(math.sqrt(2.0))  # P(|z| > 2) = 4.55 %
    assert at_edge == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / len(m)))  # 4 binomial standard errors


def test_ks_against_the_analytic_distribution() -> None:
    m = _magnitudes(n=50_000, seed=3)
    below = m[m < 2 * EPS * (1 - 1e-12)].numpy()
    assert stats.kstest(below, lambda t: below_edge_cdf(t, EPS)).pvalue > 0.01
    # the test has power: the truncated law (mean eps, sigma = eps / 0.7228) is rejected at this size
    truncated = FGSM(magnitude="truncated_normal", generator=torch.Generator().manual_seed(3))
    other = truncated.magnitudes(torch.tensor(EPS, dtype=torch.float64), torch.empty(50_000, dtype=torch.float64))
    other = other[other < 2 * EPS].numpy()
    assert stats.kstest(other, lambda t: below_edge_cdf(t, EPS)).pvalue < 1e-6


def test_fgsm_step_uses_the_law_per_pixel_at_the_budget() -> None:
    """Through `perturb`: |delta| / eps has the clipped law's mean, and no pixel moves more than 2 eps."""
    torch.manual_seed(0)
    model, x = tiny_resnet(), interior_images()
    y = torch.arange(len(x)) % 10
    result = FGSM(magnitude="clipped_normal", generator=torch.Generator().manual_seed(1)).craft(model, x, y, 30.0)
    ratio = result.delta.abs() / snr_eps(x, 30.0)
    assert ratio.max().item() <= 2.0 + 1e-6
    assert ratio.mean().item() == pytest.approx(CLIPPED_HALF_NORMAL_MEAN, rel=0.05)
