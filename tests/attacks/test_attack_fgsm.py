"""FGSM: nominal SNR, magnitude laws, labels, spaces, and that crafting leaves the model untouched."""

from __future__ import annotations

import pytest
import torch
from attack_helpers import MEAN, STD, interior_images, tiny_resnet
from scipy import stats
from torch import Tensor, nn

from adv_smooth.attacks import FGSM, PGD, GaussianNoise, measured_snr_db, snr_eps, truncated_normal_sigma
from adv_smooth.attacks.fgsm import TRUNCATED_HALF_NORMAL_MEAN
from adv_smooth.models import PreActResNet
from adv_smooth.utils.errors import UserError

LEVELS = [50.0, 45.0, 40.0, 33.0]


@pytest.mark.parametrize("snr", LEVELS)
def test_sign_fgsm_reaches_nominal_snr_before_clamping(
    resnet: PreActResNet, images: Tensor, labels: Tensor, snr: float
):
    result = FGSM().craft(resnet, images, labels, snr)
    assert (result.delta != 0).all(), "a zero gradient component would lower the energy; the test needs none"
    assert measured_snr_db(images, images + result.delta).sub(snr).abs().max() < 1e-3
    # interior images are not clamped, so the returned images have the nominal SNR too
    assert measured_snr_db(images, result.x_adv).sub(snr).abs().max() < 1e-3


def test_results_are_clamped_to_unit_range(resnet: PreActResNet, labels: Tensor) -> None:
    x = torch.rand(8, 3, 16, 16)
    x[:, :, :4] = 0.0
    x[:, :, -4:] = 1.0
    for attack in (FGSM(), FGSM(magnitude="uniform"), PGD(steps=2), GaussianNoise(), FGSM(space="normalized")):
        x_adv = attack.perturb(resnet, x, labels, 20.0)
        assert x_adv.min() >= 0 and x_adv.max() <= 1, attack
        assert x_adv.shape == x.shape and not x_adv.requires_grad


def _standardized_magnitudes(attack: FGSM, n: int = 64) -> tuple[Tensor, Tensor]:
    """|delta| / eps per pixel, for many pixels with a nonzero gradient."""
    model = tiny_resnet()
    x = interior_images(n)
    result = attack.craft(model, x, torch.arange(n) % 10, 33.0)
    ratio = (result.delta.abs() / result.eps).flatten()
    return ratio[result.delta.flatten() != 0], result.eps


def test_truncated_normal_law() -> None:
    ratio, _ = _standardized_magnitudes(FGSM(magnitude="truncated_normal", generator=torch.Generator().manual_seed(3)))
    sigma = truncated_normal_sigma(1.0)  # in units of eps
    assert sigma == pytest.approx(1 / 0.72279, rel=1e-4)
    assert ratio.max() <= 2 * sigma * (1 + 1e-6)
    assert ratio.mean().item() == pytest.approx(1.0, rel=0.02)  # mean magnitude is the budget
    law = stats.truncnorm(a=0.0, b=2.0, scale=sigma)  # |N(0, sigma)| given |N| <= 2 sigma
    assert stats.kstest(ratio.double().numpy(), law.cdf).pvalue > 1e-3
    assert law.mean() == pytest.approx(TRUNCATED_HALF_NORMAL_MEAN * sigma)


def test_uniform_law() -> None:
    ratio, _ = _standardized_magnitudes(FGSM(magnitude="uniform", generator=torch.Generator().manual_seed(4)))
    assert ratio.max() <= 2.0 and ratio.mean().item() == pytest.approx(1.0, rel=0.02)
    assert stats.kstest(ratio.double().numpy(), stats.uniform(0.0, 2.0).cdf).pvalue > 1e-3


def test_random_laws_keep_the_gradient_sign_and_are_reproducible(resnet, images, labels) -> None:
    sign = FGSM().craft(resnet, images, labels, 40.0).delta.sign()
    for law in ("truncated_normal", "uniform"):
        a = FGSM(magnitude=law, generator=torch.Generator().manual_seed(7)).craft(resnet, images, labels, 40.0)
        b = FGSM(magnitude=law, generator=torch.Generator().manual_seed(7)).craft(resnet, images, labels, 40.0)
        torch.testing.assert_close(a.delta, b.delta, rtol=0, atol=0)
        nonzero = a.delta != 0
        assert torch.equal(a.delta.sign()[nonzero], sign[nonzero])


@pytest.mark.parametrize(
    "attack", [FGSM(), FGSM(magnitude="truncated_normal"), PGD(steps=2), GaussianNoise()], ids=lambda a: repr(a)
)
def test_crafting_leaves_no_gradients_and_no_bn_update(attack, images: Tensor, labels: Tensor) -> None:
    model = tiny_resnet()
    model.train()
    stats_before = {k: v.clone() for k, v in model.state_dict().items()}
    attack.perturb(model, images, labels, 33.0)
    assert all(p.grad is None for p in model.parameters())
    assert model.training and all(m.training for m in model.modules()), "the previous mode must come back"
    for k, v in model.state_dict().items():
        assert torch.equal(v, stats_before[k]), k


def test_previous_mode_is_restored_module_by_module(images, labels) -> None:
    model = tiny_resnet()
    model.train()
    model.bn.eval()  # e.g. a frozen BN inside a training model
    FGSM().perturb(model, images, labels, 40.0)
    assert model.training and not model.bn.training and model.blocks[0].bn1.training


def test_bn_mode_keep_crafts_in_the_current_mode(images, labels) -> None:
    model = tiny_resnet()
    model.train()
    before = model.bn.running_mean.clone()
    FGSM(bn_mode="keep").perturb(model, images, labels, 40.0)
    assert not torch.equal(model.bn.running_mean, before), "train-mode forward passes update BN statistics"


def test_works_under_no_grad_but_not_inference_mode(resnet, images, labels) -> None:
    expected = FGSM().perturb(resnet, images, labels, 40.0)
    with torch.no_grad():
        torch.testing.assert_close(FGSM().perturb(resnet, images, labels, 40.0), expected)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        FGSM().perturb(resnet, images, labels, 40.0)
    with torch.inference_mode():
        frozen_x, frozen_y = images.clone(), labels.clone()
    torch.testing.assert_close(FGSM().perturb(resnet, frozen_x, frozen_y, 40.0), expected)  # inference tensors


def test_predicted_labels_craft_against_the_model_predictions(resnet, images) -> None:
    resnet.eval()
    with torch.no_grad():
        predicted = resnet(images).argmax(dim=1)
    wrong = (predicted + 1) % 10  # "true" labels that disagree with every prediction
    with_predicted = FGSM(labels="predicted").craft(resnet, images, wrong, 40.0).delta
    torch.testing.assert_close(with_predicted, FGSM().craft(resnet, images, predicted, 40.0).delta)
    assert not torch.equal(with_predicted, FGSM().craft(resnet, images, wrong, 40.0).delta)


@pytest.mark.parametrize("snr", [45.0, 33.0])
def test_normalized_space_reaches_the_snr_of_the_normalized_image(resnet, images, labels, snr: float) -> None:
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    z = (images - mean) / std
    result = FGSM(space="normalized").craft(resnet, images, labels, snr)
    torch.testing.assert_close(result.z, z)
    assert measured_snr_db(z, z + result.delta).sub(snr).abs().max() < 1e-3
    torch.testing.assert_close(result.eps, snr_eps(z, snr))
    # delta_pixel = delta_norm * std (interior images: no clamping)
    torch.testing.assert_close(result.x_adv - images, result.delta * std, atol=1e-6, rtol=1e-4)
    z_adv = (result.x_adv - mean) / std
    assert measured_snr_db(z, z_adv).sub(snr).abs().max() < 1e-2
    # ...which is not the pixel-space SNR
    assert measured_snr_db(images, result.x_adv).sub(snr).abs().min() > 1.0


def test_normalized_space_needs_mean_and_std() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    with pytest.raises(UserError, match="normalized"):
        FGSM(space="normalized").perturb(model, torch.rand(2, 3, 4, 4), torch.tensor([0, 1]), 40.0)


def test_linf_budget_is_fixed(resnet, images, labels) -> None:
    x_adv = FGSM(budget="fixed", eps_255=4).perturb(resnet, images, labels)
    torch.testing.assert_close((x_adv - images).abs(), torch.full_like(images, 4 / 255), atol=1e-6, rtol=0)


def test_bad_options_are_user_errors() -> None:
    with pytest.raises(UserError, match="magnitude='gauss'"):
        FGSM(magnitude="gauss")
    with pytest.raises(UserError, match="eps_255"):
        FGSM(budget="fixed")
    with pytest.raises(UserError, match="labels"):
        FGSM(labels="target")
    with pytest.raises(UserError, match="needs an SNR"):
        FGSM().perturb(tiny_resnet(), interior_images(2), torch.tensor([0, 1]))
