"""Attacks: small objects, pure torch, that perturb images in [0, 1] at a per-image budget (see `base.Attack`)."""

from __future__ import annotations

from typing import Any

from adv_smooth.attacks.base import Attack, AttackResult, crafting_mode, input_gradient
from adv_smooth.attacks.budget import linf_eps, measured_snr_db, snr_eps
from adv_smooth.attacks.evaluate import cumulative_correct, robust_predictions, weak_to_strong
from adv_smooth.attacks.fgsm import FGSM, truncated_normal_sigma
from adv_smooth.attacks.noise import GaussianNoise
from adv_smooth.attacks.pgd import PGD
from adv_smooth.errors import require

ATTACKS: dict[str, type[Attack]] = {"fgsm": FGSM, "pgd": PGD, "noise": GaussianNoise}


def build_attack(name: str, **kwargs: Any) -> Attack:
    """The attack registered under `name`, built with `kwargs`; a `UserError` names a bad name."""
    require(name in ATTACKS, "attack", name, f"expected one of {sorted(ATTACKS)}")
    return ATTACKS[name](**kwargs)


__all__ = [
    "ATTACKS",
    "FGSM",
    "PGD",
    "Attack",
    "AttackResult",
    "GaussianNoise",
    "build_attack",
    "crafting_mode",
    "cumulative_correct",
    "input_gradient",
    "linf_eps",
    "measured_snr_db",
    "robust_predictions",
    "snr_eps",
    "truncated_normal_sigma",
    "weak_to_strong",
]
