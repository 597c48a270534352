"""Adversarial training takes its attack from config; the budget stays in the defense."""

from __future__ import annotations

import pytest
import torch

from adv_smooth.app.build import build_defense
from adv_smooth.attacks.budget import snr_eps
from adv_smooth.attacks.fgsm import FGSM
from adv_smooth.attacks.pgd import PGD
from adv_smooth.defenses import TrainBatch
from adv_smooth.defenses.adversarial import AdversarialTraining, mean_snr_eps
from adv_smooth.models import PreActResNet
from adv_smooth.utils.errors import UserError
from tests.conftest import compose_config


def _adversarial(*overrides: str) -> AdversarialTraining:
    return build_defense(compose_config("defense=adv", *overrides).defense).defenses[0]


def test_default_config_keeps_fgsm_and_the_user_facing_keys() -> None:
    defense = _adversarial()
    assert type(defense.attack) is FGSM
    assert (defense.attack.magnitude, defense.attack.labels, defense.attack.bn_mode) == (
        "truncated_normal",
        "true",
        "eval",
    )
    defense = _adversarial("defense.magnitude=clipped_normal", "defense.labels=predicted", "defense.bn_mode=keep")
    assert (defense.attack.magnitude, defense.attack.labels, defense.attack.bn_mode) == (
        "clipped_normal",
        "predicted",
        "keep",
    )


def test_the_attack_group_swaps_the_crafting_attack() -> None:
    defense = _adversarial(
        "attack@defense.components.adversarial.attack=pgd",
        "~defense.components.adversarial.attack.magnitude",
        "defense.eps_255=4",
    )
    assert type(defense.attack) is PGD and defense.attack.steps == 10
    assert (defense.attack.budget, defense.attack.eps_255) == ("fixed", 4)  # the defense's budget, not pgd.yaml's


def test_the_defense_budget_overrides_the_attack_config_without_touching_it() -> None:
    given = FGSM(magnitude="sign", budget="fixed", eps_255=99.0)
    defense = AdversarialTraining(attack=given, snr=30.0, fraction=1.0, adv_weight=1.0)
    assert defense.attack is not given and (given.budget, given.eps_255) == ("fixed", 99.0)
    assert defense.attack.budget == "snr"
    model = PreActResNet(10, 1, width=4, blocks=(1,)).eval()
    x = 0.3 + 0.4 * torch.rand(4, 1, 8, 8)
    out = defense.prepare_batch(model, TrainBatch.clean(x, torch.arange(4)))
    torch.testing.assert_close((out.inputs - x).abs(), snr_eps(x, 30.0).expand_as(x))


def test_l2_attack_with_dataset_mean_gets_the_mean_l2_radius() -> None:
    images = torch.rand(20, 1, 8, 8, dtype=torch.float64)
    defense = AdversarialTraining(attack=PGD(norm="l2", steps=2), budget_mode="dataset_mean", snr=33.0)
    defense.calibrate([images])
    radius = (images.flatten(1).norm(dim=1) * 10 ** (-33 / 20)).mean().item()
    assert defense.calibrated_eps == pytest.approx(radius, rel=1e-12)
    assert (defense.attack.budget, defense.attack.radius) == ("fixed", pytest.approx(radius, rel=1e-12))
    assert mean_snr_eps([images], 33.0, "l2") == pytest.approx(mean_snr_eps([images], 33.0) * 8.0, rel=1e-12)


def test_eps_255_needs_an_linf_attack() -> None:
    with pytest.raises(UserError, match=r"^eps_255=4.0 is invalid: null with an l2 attack"):
        AdversarialTraining(attack=PGD(norm="l2"), eps_255=4.0)
