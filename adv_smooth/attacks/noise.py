"""Random Gaussian noise at an exact SNR: the LPN paper's noise test, and a sanity baseline.

An attack that cannot beat random noise of the same energy is not an attack. Each image's noise is
rescaled to the L2 size of the budget, i.e. exactly the requested SNR before clamping: ||delta||_2 = r
with `norm="l2"`, eps * sqrt(D) (the sign step's energy) with `norm="linf"`, which at an SNR budget are
the same number (with a fixed L-inf budget, the noise has RMS eps_255/255 per value).
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from adv_smooth.attacks.base import Attack, Problem
from adv_smooth.attacks.budget import per_image_norm


class GaussianNoise(Attack):
    """Isotropic Gaussian noise scaled per image to the budget's L2 energy; ignores the model's loss.

    Args: only the options every attack takes (see `Attack`); `labels` has no effect.
    """

    name = "noise"
    uses_labels = False
    uses_gradients = False  # drawn, not searched: the honesty checks compare it as a gradient-free attack

    def passes_per_image(self, levels: int) -> float:
        """No pass through the model: the noise is drawn, not searched (see `Attack.passes_per_image`)."""
        return 0.0

    def _perturbation(self, problem: Problem, eps: Tensor, prepared: Any) -> Tensor:
        noise = self._normal(problem.z)
        target_norm = eps * math.sqrt(problem.z[0].numel()) if self.norm == "linf" else eps
        norm = per_image_norm(noise).clamp_min(1e-12).view_as(eps)
        return noise * (target_norm / norm)
