"""Threat models as small step objects (MadryLab `robustness`, `attack_steps.py` style): L-inf and L2.

Every iterative attack is written once against this interface and takes `norm: linf | l2`:

* `norm(delta)`: each image's perturbation size in this norm, shape (N,);
* `project(delta, eps)`: the nearest point of the ball of per-image radius `eps` (shaped (N, 1, ..., 1));
* `step(grad, alpha)`: the steepest-ascent step of size `alpha` (the sign for L-inf, the normalized
  gradient for L2);
* `random_start(like, eps, draw)`: a random point of the ball (`draw` is the attack's seeded sampler).

Why two norms: the study's budget is an SNR, an L2 quantity. The perturbations it allows at SNR s are
exactly ||delta||_2 <= r(x, s) = ||x||_2 * 10^(-s/20). The L-inf cube of side eps = r / sqrt(D) that
FGSM's sign step lives in is inscribed in that ball: an L-inf attack never tries the rest of it.

The [0, 1] box is not part of the ball: an attack projects onto the ball, then clips z + delta to the
box (`Space.box`). Clipping moves every coordinate towards the clean image, so it never leaves the ball.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

NORMS = ("linf", "l2")
DISPLAY = {"linf": "Linf", "l2": "L2"}  # the field's names (RobustBench, AutoAttack) in every table and message

TINY = 1e-12


def _per_image(values: Tensor, like: Tensor) -> Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


class ThreatModel:
    """The ball of one norm; subclasses implement its four verbs."""

    name: str = "?"

    def norm(self, delta: Tensor) -> Tensor:
        raise NotImplementedError

    def project(self, delta: Tensor, eps: Tensor) -> Tensor:
        raise NotImplementedError

    def step(self, grad: Tensor, alpha: Tensor) -> Tensor:
        raise NotImplementedError

    def random_start(self, like: Tensor, eps: Tensor, draw: Callable[[Tensor, str], Tensor]) -> Tensor:
        raise NotImplementedError

    def radius_from_l2(self, l2_radius: Tensor, dims: int) -> Tensor:
        """The radius in this norm that corresponds to an SNR budget of L2 radius `l2_radius`."""
        raise NotImplementedError


class LinfBall(ThreatModel):
    """|delta_i| <= eps for every value; at an SNR budget eps = r / sqrt(D) (the sign step then has norm r)."""

    name = "linf"

    def norm(self, delta: Tensor) -> Tensor:
        return delta.flatten(1).abs().amax(dim=1)

    def project(self, delta: Tensor, eps: Tensor) -> Tensor:
        return torch.maximum(torch.minimum(delta, eps), -eps)

    def step(self, grad: Tensor, alpha: Tensor) -> Tensor:
        return alpha * grad.sign()

    def random_start(self, like: Tensor, eps: Tensor, draw: Callable[[Tensor, str], Tensor]) -> Tensor:
        return (2.0 * draw(like, "uniform") - 1.0) * eps

    def radius_from_l2(self, l2_radius: Tensor, dims: int) -> Tensor:
        return l2_radius / math.sqrt(dims)


class L2Ball(ThreatModel):
    """||delta||_2 <= eps per image; at an SNR budget eps is r(x, s) itself."""

    name = "l2"

    def norm(self, delta: Tensor) -> Tensor:
        return delta.flatten(1).norm(dim=1)

    def project(self, delta: Tensor, eps: Tensor) -> Tensor:
        norm = _per_image(self.norm(delta), delta)
        return delta * torch.clamp(eps / norm.clamp_min(TINY), max=1.0)

    def step(self, grad: Tensor, alpha: Tensor) -> Tensor:
        return alpha * grad / _per_image(self.norm(grad), grad).clamp_min(TINY)

    def random_start(self, like: Tensor, eps: Tensor, draw: Callable[[Tensor, str], Tensor]) -> Tensor:
        """Uniform in the ball: a Gaussian direction and radius eps * u^(1/D)."""
        direction = draw(like, "normal")
        direction = direction / _per_image(self.norm(direction), like).clamp_min(TINY)
        u = draw(like.new_empty(like.shape[0]), "uniform")
        return direction * eps * _per_image(u ** (1.0 / like[0].numel()), like)

    def radius_from_l2(self, l2_radius: Tensor, dims: int) -> Tensor:
        return l2_radius


def threat_model(norm: str) -> ThreatModel:
    """`LinfBall()` for "linf", `L2Ball()` for "l2" (callers validate `norm` first)."""
    return LinfBall() if norm == "linf" else L2Ball()
