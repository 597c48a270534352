"""Budgets from SNR, and the SNR measurement itself."""

from __future__ import annotations

import math

import pytest
import torch

from adv_smooth.attacks import linf_eps, measured_snr_db, snr_eps


def test_snr_eps_formula_and_shape() -> None:
    x = torch.rand(5, 3, 32, 32)
    eps = snr_eps(x, 33.0)
    assert eps.shape == (5, 1, 1, 1)
    expected = x.flatten(1).norm(dim=1) / (10 ** (33 / 20) * math.sqrt(3 * 32 * 32))
    torch.testing.assert_close(eps.flatten(), expected)


@pytest.mark.parametrize("snr", [50.0, 45.0, 40.0, 33.0])
def test_sign_step_at_snr_eps_measures_that_snr(snr: float) -> None:
    x = torch.rand(6, 3, 8, 8)
    signs = torch.where(torch.rand_like(x) < 0.5, -1.0, 1.0)
    measured = measured_snr_db(x, x + snr_eps(x, snr) * signs)
    assert measured.sub(snr).abs().max() < 1e-3


def test_zero_images_give_zero_budget_and_no_nan() -> None:
    x = torch.rand(3, 1, 4, 4)
    x[1] = 0.0
    eps = snr_eps(x, 40.0)
    assert eps[1].item() == 0.0 and torch.isfinite(eps).all()
    snr = measured_snr_db(x, x)  # unchanged images, the zero one included
    assert torch.isinf(snr).all() and (snr > 0).all()
    perturbed = x.clone()
    perturbed[1] += 0.1
    assert measured_snr_db(x, perturbed)[1].item() == -math.inf
    assert not torch.isnan(measured_snr_db(x, perturbed)).any()


def test_infinite_snr_means_no_budget() -> None:
    assert (snr_eps(torch.rand(2, 3, 4, 4), math.inf) == 0).all()


def test_linf_eps_is_per_image_in_255_units() -> None:
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    eps = linf_eps(8, x)
    assert eps.shape == (4, 1, 1, 1) and eps.dtype == torch.float64
    assert torch.all(eps == 8 / 255)


def test_budget_broadcasts_for_flat_inputs() -> None:
    x = torch.rand(4, 10)
    assert snr_eps(x, 20).shape == (4, 1) and linf_eps(2, x).shape == (4, 1)
