"""PGD (stronger than FGSM, stays in its ball) and the Gaussian-noise test (exact SNR)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from adv_smooth.attacks import FGSM, PGD, GaussianNoise, measured_snr_db, snr_eps
from adv_smooth.models import PreActResNet
from adv_smooth.robustness.batch import robust_predictions

DIGIT_LEVELS = [25.0, 20.0, 15.0]  # 8x8 digits need stronger noise than 32x32 photos to show anything


def _accuracy(model: nn.Module, x: Tensor, y: Tensor, attack, snr: float) -> tuple[float, Tensor]:
    correct = robust_predictions(model, x, y, attack, [snr])["correct"][snr]
    return correct.float().mean().item(), correct


@pytest.mark.parametrize("snr", DIGIT_LEVELS)
def test_pgd_is_never_weaker_than_fgsm(digits, snr: float) -> None:
    model, x, y = digits
    fgsm_acc, fgsm_correct = _accuracy(model, x, y, FGSM(), snr)
    pgd_acc, pgd_correct = _accuracy(model, x, y, PGD(generator=torch.Generator().manual_seed(0)), snr)
    assert pgd_acc <= fgsm_acc
    assert not (pgd_correct & ~fgsm_correct).any(), "every image FGSM breaks, PGD breaks (FGSM is a candidate)"


def test_pgd_is_stronger_on_its_own(digits) -> None:
    """Without the FGSM candidate, the iterative attack must still beat the single step at a strong level."""
    model, x, y = digits
    clean = robust_predictions(model, x, y, FGSM(), [15.0])["clean"].float().mean().item()
    fgsm_acc, _ = _accuracy(model, x, y, FGSM(), 15.0)
    pgd_acc, _ = _accuracy(model, x, y, PGD(include_fgsm=False, generator=torch.Generator().manual_seed(0)), 15.0)
    assert clean > 0.9, "the test model did not train"
    assert pgd_acc < fgsm_acc < clean


def test_more_restarts_never_help_the_model(digits) -> None:
    """With the same generator the first restart is identical, so 3 restarts break a superset of images."""
    model, x, y = digits
    _, one = _accuracy(model, x, y, PGD(restarts=1, generator=torch.Generator().manual_seed(5)), 20.0)
    _, three = _accuracy(model, x, y, PGD(restarts=3, generator=torch.Generator().manual_seed(5)), 20.0)
    assert not (three & ~one).any()


@pytest.mark.parametrize("space", ["pixel", "normalized"])
def test_pgd_stays_in_its_ball_and_in_range(resnet: PreActResNet, labels: Tensor, space: str) -> None:
    x = torch.rand(8, 3, 16, 16)
    result = PGD(steps=3, space=space).craft(resnet, x, labels, 33.0)
    assert (result.delta.abs() <= result.eps * (1 + 1e-6)).all()
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    # clamping only removes energy: the measured SNR is at least the nominal one (in the attack space)
    z_adv = result.z + (result.x_adv - x) / (1 if space == "pixel" else resnet.std)
    assert (measured_snr_db(result.z, z_adv) >= 33.0 - 1e-3).all()


def test_pgd_with_zero_random_start_and_one_step_of_full_size_is_fgsm(resnet, images, labels) -> None:
    pgd = PGD(steps=1, step_size=1.0, random_start=False, include_fgsm=False)
    torch.testing.assert_close(pgd.perturb(resnet, images, labels, 40.0), FGSM().perturb(resnet, images, labels, 40.0))


@pytest.mark.parametrize("snr", [50.0, 45.0, 40.0, 33.0])
def test_gaussian_noise_has_the_exact_snr(resnet, images, labels, snr: float) -> None:
    result = GaussianNoise(generator=torch.Generator().manual_seed(0)).craft(resnet, images, labels, snr)
    assert measured_snr_db(images, images + result.delta).sub(snr).abs().max() < 1e-3
    assert measured_snr_db(images, result.x_adv).sub(snr).abs().max() < 1e-3  # interior: nothing clamped
    torch.testing.assert_close(result.eps, snr_eps(images, snr))


def test_gaussian_noise_leaves_zero_images_alone(resnet) -> None:
    x = torch.zeros(2, 3, 16, 16)
    assert torch.equal(GaussianNoise().perturb(resnet, x, torch.tensor([0, 1]), 30.0), x)
