"""Attacks: small objects, pure torch, that perturb images in [0, 1] at a per-image budget (see `base.Attack`).

There is no registry: an attack is one module here plus one YAML in `conf/attack/` naming its class as
`_target_`; the entry points build it (`adv_smooth/app/build.py`). The names below are re-exported
for convenience only.
"""

from __future__ import annotations

from adv_smooth.attacks.base import Attack, AttackResult
from adv_smooth.attacks.budget import linf_eps, measured_snr_db, snr_eps, snr_radius
from adv_smooth.attacks.fgsm import FGSM, truncated_normal_sigma
from adv_smooth.attacks.gradients import crafting_mode, input_gradient
from adv_smooth.attacks.noise import GaussianNoise
from adv_smooth.attacks.pgd import PGD

__all__ = [
    "FGSM",
    "PGD",
    "Attack",
    "AttackResult",
    "GaussianNoise",
    "crafting_mode",
    "input_gradient",
    "linf_eps",
    "measured_snr_db",
    "snr_eps",
    "snr_radius",
    "truncated_normal_sigma",
]
