"""FGSM (Goodfellow et al. 2015): one step along the sign of the input gradient, with three magnitude laws.

    delta = m * sign(grad_x CE(model(x), labels))

* `magnitude="sign"`: m = eps (the classic FGSM; the report's evaluation attack).
* `magnitude="truncated_normal"`: per pixel m = |N(0, sigma)| truncated at 2 sigma (i.e. conditioned on
  |N| <= 2 sigma, as TensorFlow's `truncated_normal`), with sigma chosen so that E[m] = eps. This is
  the report's adversarial-training law. For the half-normal truncated at a = 2 sigma,

      E[m] = sigma * sqrt(2/pi) * (1 - exp(-a^2 / (2 sigma^2))) / erf(a / (sigma sqrt 2))
           = sigma * sqrt(2/pi) * (1 - e^-2) / erf(sqrt 2)  ~= 0.7228 sigma,

  so sigma = eps / 0.7228 and the largest magnitude is 2 sigma ~= 2.77 eps.
* `magnitude="uniform"`: per pixel m ~ U(0, 2 eps), mean eps.
* `magnitude="clipped_normal"`: per pixel m = |clip(N(0, sigma), -2 sigma, 2 sigma)| with sigma = eps, what the
  report's code (svhn.py) actually drew. Clipped, not truncated: the 4.55 % of draws beyond 2 sigma sit at
  2 sigma. E[m] = eps (sqrt(2/pi) (1 - e^-2) + 2 erfc(sqrt 2)) ~= 0.781 eps, RMS ~= 0.959 eps, max 2 eps.
  Used with one global eps (`budget_mode=dataset_mean`) it reproduces the report's training law.

The random laws match the budget's *mean* magnitude (as the report did), not its energy: E[m^2] > eps^2,
so their L2 SNR is lower than nominal (by 1.71 dB for the truncated normal, 1.25 dB for the uniform).

Adversarial training reuses this class, e.g.

    FGSM(magnitude="truncated_normal", labels="predicted", generator=g).perturb(model, x, y, snr_db=33)

`labels="predicted"` crafts against the model's own predictions (Kurakin et al. 2016: true labels
leak into the adversarial examples and the model learns to exploit it).

With `norm="l2"` the single step is the fast gradient method in L2, delta = r * g / ||g||, on the sphere
of the budget (only `magnitude="sign"`: the random laws are per-pixel L-inf magnitudes).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from adv_smooth.attacks.base import GRADIENT_PASS, Attack, Problem
from adv_smooth.attacks.gradients import input_gradient
from adv_smooth.utils.errors import require

MAGNITUDES = ("sign", "truncated_normal", "uniform", "clipped_normal")

TRUNCATION = 2.0  # in units of sigma
#: E|z| / sigma for z ~ N(0, sigma) conditioned on |z| <= TRUNCATION * sigma.
TRUNCATED_HALF_NORMAL_MEAN = (
    math.sqrt(2.0 / math.pi) * (1.0 - math.exp(-(TRUNCATION**2) / 2.0)) / math.erf(TRUNCATION / math.sqrt(2.0))
)


#: E|clip(z, -2, 2)| and sqrt(E[clip(z, -2, 2)^2]) for z ~ N(0, 1): the clipped law's mean and RMS per unit sigma.
CLIPPED_HALF_NORMAL_MEAN = math.sqrt(2.0 / math.pi) * (1.0 - math.exp(-(TRUNCATION**2) / 2.0)) + TRUNCATION * math.erfc(
    TRUNCATION / math.sqrt(2.0)
)
CLIPPED_HALF_NORMAL_RMS = math.sqrt(
    math.erf(TRUNCATION / math.sqrt(2.0))
    - 2.0 * TRUNCATION * math.exp(-(TRUNCATION**2) / 2.0) / math.sqrt(2.0 * math.pi)
    + TRUNCATION**2 * math.erfc(TRUNCATION / math.sqrt(2.0))
)


def truncated_normal_sigma(eps: Tensor | float) -> Tensor | float:
    """The sigma whose truncated half-normal magnitudes have mean `eps`."""
    return eps / TRUNCATED_HALF_NORMAL_MEAN


class FGSM(Attack):
    """Fast gradient sign method at a per-image budget.

    Args:
        magnitude: "sign" | "truncated_normal" | "uniform" (per-pixel law of the step size, mean eps) |
            "clipped_normal" (the report's code: sigma = eps, mean 0.781 eps).
        **common: the options every attack takes (see `Attack`): budget, eps_255, space, labels,
            bn_mode, generator.
    """

    name = "fgsm"

    def __init__(self, magnitude: str = "sign", **common: Any) -> None:
        require(magnitude in MAGNITUDES, "magnitude", magnitude, f"expected one of {list(MAGNITUDES)}")
        super().__init__(**common)
        require(
            self.norm == "linf" or magnitude == "sign",
            "magnitude",
            magnitude,
            "norm='l2' takes only magnitude='sign' (the random laws are per-pixel L-inf magnitudes)",
        )
        self.magnitude = magnitude

    def passes_per_image(self, levels: int) -> float:
        """One input gradient, shared by every level (see `Attack.passes_per_image`)."""
        return self._labels_passes() + GRADIENT_PASS

    def _prepare(self, problem: Problem) -> Tensor:
        """The gradient at the clean image: it does not depend on the budget, so every level shares it."""
        return input_gradient(problem.f, problem.z, problem.labels)

    def _perturbation(self, problem: Problem, eps: Tensor, prepared: Tensor) -> Tensor:
        if self.norm == "l2":
            return self.threat.step(prepared, eps)
        return self.magnitudes(eps, prepared) * prepared.sign()

    def magnitudes(self, eps: Tensor, like: Tensor) -> Tensor:
        """Per-pixel step sizes drawn from the magnitude law (broadcast per image): mean `eps`, except the
        clipped normal, whose scale sigma is `eps` (the report's code)."""
        if self.magnitude == "sign":
            return eps
        if self.magnitude == "clipped_normal":  # sigma = eps; |clip(z, -2, 2)| == min(|z|, 2)
            return eps * self._normal(like).abs_().clamp_(max=TRUNCATION)
        u = self._uniform(like)
        if self.magnitude == "uniform":
            return 2.0 * eps * u
        # Inverse CDF of |N(0, sigma)| given |N| <= a: P(m <= t) = erf(t / (sigma sqrt 2)) / erf(a / (sigma sqrt 2)).
        sigma = truncated_normal_sigma(eps)
        tail = math.erf(TRUNCATION / math.sqrt(2.0))
        standard = (math.sqrt(2.0) * torch.erfinv(u * tail)).clamp_(max=TRUNCATION)  # clamp: float round-off
        return sigma * standard
