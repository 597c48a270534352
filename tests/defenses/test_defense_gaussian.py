"""`defense=gaussian`: noise of the requested level on every training image, composing with the others."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adv_smooth.app.build import build_defense
from adv_smooth.defenses.base import Compose, TrainBatch
from adv_smooth.defenses.gaussian import GaussianAugmentation
from adv_smooth.defenses.smoothness import LaplacianSmoothness
from adv_smooth.models.preact_resnet import PreActResNet
from adv_smooth.utils.errors import UserError
from tests.conftest import compose_config


def test_absolute_sigma_is_the_noise_standard_deviation() -> None:
    torch.manual_seed(0)
    x = torch.rand(64, 3, 16, 16)
    batch = GaussianAugmentation(sigma=0.25).prepare_batch(None, TrainBatch.clean(x, torch.zeros(64).long()))
    noise = batch.inputs - x
    assert noise.std().item() == pytest.approx(0.25, rel=0.02) and abs(noise.mean().item()) < 0.005
    assert batch.inputs.min() < 0 and batch.inputs.max() > 1, "unclamped, as certification draws it"
    assert batch.clean_count == 64 and bool(batch.clean_mask.all()), "the noisy rows are the training images"


def test_snr_sets_each_images_noise_norm() -> None:
    torch.manual_seed(1)
    x = torch.rand(32, 1, 32, 32) * torch.linspace(0.1, 1.0, 32).view(32, 1, 1, 1)  # norms over a 10x range
    snr = 20.0
    batch = GaussianAugmentation(sigma=None, snr=snr).prepare_batch(None, TrainBatch.clean(x, torch.zeros(32).long()))
    expected = x.flatten(1).norm(dim=1) * 10 ** (-snr / 20)  # sigma sqrt(D): the noise's expected L2 norm
    measured = (batch.inputs - x).flatten(1).norm(dim=1)
    assert torch.allclose(measured / expected, torch.ones(32), atol=0.06)


def test_preset_composes_with_smooth_and_trains_a_step() -> None:
    cfg = compose_config("defense=gaussian_smooth", "defense.noise_sigma=0.1", "defense.gamma=0.05")
    defense = build_defense(cfg.defense)
    assert isinstance(defense, Compose)
    kinds = [type(d) for d in defense.defenses]
    assert kinds == [GaussianAugmentation, LaplacianSmoothness], "noise first: the regularizer reads the noisy rows"
    assert defense.defenses[0].sigma == 0.1 and defense.needs_activations
    torch.manual_seed(0)
    model = PreActResNet(num_classes=10, in_channels=1, width=4, blocks=(1, 1)).train()
    x, y = torch.rand(12, 1, 8, 8), torch.arange(12) % 10
    batch = defense.prepare_batch(model, TrainBatch.clean(x, y))
    assert not torch.equal(batch.inputs, x)
    logits, taps = model(batch.inputs, return_activations=True)
    terms = defense.loss_terms(batch, logits, taps)
    loss = F.cross_entropy(logits, batch.targets) + sum(terms.values())
    loss.backward()
    assert set(terms) == {"smooth"} and math.isfinite(loss.item()) and terms["smooth"].item() > 0


def test_snr_preset_reaches_certification_config() -> None:
    """eval=certified smooths at the training run's own level."""
    cfg = compose_config("defense=gaussian", "defense.noise_sigma=null", "defense.noise_snr=15", "eval=certified")
    assert (cfg.eval.certify.sigma, cfg.eval.certify.sigma_snr) == (None, 15)
    cfg = compose_config("defense=gaussian", "defense.noise_sigma=0.5", "eval=certified")
    assert (cfg.eval.certify.sigma, cfg.eval.certify.sigma_snr) == (0.5, None)
    cfg = compose_config("defense=smooth", "eval=certified")
    assert (cfg.eval.certify.sigma, cfg.eval.certify.sigma_snr) == (0.25, None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sigma": 0.0}, "sigma=0.0 is invalid"),
        ({"sigma": -1.0}, "sigma=-1.0 is invalid"),
        ({"sigma": None, "snr": float("nan")}, "snr=nan is invalid"),
        ({"sigma": 0.2, "snr": 10.0}, "set exactly one"),
        ({"sigma": None}, "set exactly one"),
    ],
)
def test_bad_levels_are_refused_naming_the_key(options: dict, message: str) -> None:
    with pytest.raises(UserError) as error:
        GaussianAugmentation(**options)
    assert message in str(error.value)
