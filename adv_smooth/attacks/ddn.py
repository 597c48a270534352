"""DDN (Rony et al. 2019, "Decoupling Direction and Norm for Efficient Gradient-Based L2 Adversarial Attacks
and Defenses"): each image's minimal L2 perturbation, hence its minimal adversarial SNR and the whole curve.

Why it is the `eval=minimal` preset's search: measured side by side (`benchmarks/minimal_norm.py`), adv-lib's
DDN (100 steps) and FMN (10 steps) together find per image smaller minimal norms than FMN with its three
targeted runs (404 gradients per image): on the digits models some images FMN's logit-gap search leaves at a
far boundary are broken by DDN several dB higher. DDN's cross-entropy ascent weighs every other class by its
probability, so it does not settle on one class's boundary, and 100 steps cost a quarter of FMN's searches.

The algorithm (Algorithm 1 of the paper, as in adv-lib's `decoupled_direction_norm.py`): a step of size alpha
(cosine-annealed from 1 to `alpha_final`) along the L2-normalized gradient of the cross-entropy, then the
perturbation is rescaled to norm eps, and eps shrinks by (1 - gamma) while the iterate is adversarial and grows
by (1 + gamma) while it is not (capped at the largest perturbation the box allows); per image the smallest
adversarial perturbation seen is kept. Differences from adv-lib's version, none of them a change of the
search: no quantization of the iterate to 256 grey levels (the records measure the perturbation the model saw;
a quantized one cannot go below 1/255 per pixel, i.e. it is larger at high SNRs), a last forward pass scores
the final iterate, and a zero gradient is replaced by a unit-norm random direction from the attack's generator
(adv-lib's is unnormalized, a step of about sqrt(D)).

At a level, `_perturbation` returns the minimal delta when it fits the level's ball and its projection onto
the ball otherwise, and `min_snr_db` is 20 log10(||z|| / ||delta*||), exactly as for FMN (`fmn.py`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from adv_smooth.attacks.base import FORWARD_PASS, GRADIENT_PASS, Attack, Problem
from adv_smooth.attacks.fmn import MinimalPerturbation, cosine, keep_smallest, minimal_snr_db
from adv_smooth.attacks.gradients import loss_and_grad
from adv_smooth.utils.errors import MAX_ITERATIONS, is_number, require, require_int


class DDN(Attack):
    """Decoupled direction and norm, L2 only; fills `AttackResult.min_snr_db`.

    Args:
        steps: gradient steps (default 100, the paper's and adv-lib's).
        gamma: the relative change of the norm per step (default 0.05).
        init_norm: the first norm tried, in attack-space units (default 1.0).
        alpha_final: the final step size; alpha is annealed from 1 (default 0.01).
        **common: the options every attack takes (see `Attack`); `norm` is l2 (the default here), the only one.
    """

    name = "ddn"
    iterative = True
    minimal_norm = True

    def __init__(
        self,
        steps: int = 100,
        gamma: float = 0.05,
        init_norm: float = 1.0,
        alpha_final: float = 0.01,
        **common: Any,
    ) -> None:
        require_int("steps", steps, 1, high=MAX_ITERATIONS)
        require(is_number(gamma) and 0 < gamma < 1, "gamma", gamma, "expected a fraction in (0, 1)")
        require(is_number(init_norm) and init_norm > 0, "init_norm", init_norm, "expected a finite norm > 0")
        require(
            is_number(alpha_final) and 0 < alpha_final <= 1,
            "alpha_final",
            alpha_final,
            "expected a step size in (0, 1] (alpha starts at 1)",
        )
        super().__init__(**{"norm": "l2", **common})
        require(self.norm == "l2", "norm", self.norm, "DDN is an L2 attack: expected l2 (FMN covers linf)")
        self.steps, self.gamma = int(steps), float(gamma)
        self.init_norm, self.alpha_final = float(init_norm), float(alpha_final)

    def passes_per_image(self, levels: int) -> float:
        """One search for every level: `steps` gradients (the first also scores the clean image), then one
        forward pass that scores the final iterate."""
        return self._labels_passes() + self.steps * GRADIENT_PASS + FORWARD_PASS

    def _prepare(self, problem: Problem) -> MinimalPerturbation:
        z, labels, box, threat = problem.z, problem.labels, problem.space.box, self.threat
        n, view = z.shape[0], (-1,) + (1,) * (z.dim() - 1)
        room = torch.maximum(box(torch.full_like(z, math.inf)) - z, z - box(torch.full_like(z, -math.inf)))
        worst = threat.norm(room)
        eps = torch.full((n,), self.init_norm, dtype=z.dtype, device=z.device)
        best_norm = torch.full_like(eps, math.inf)
        best, delta = torch.zeros_like(z), torch.zeros_like(z)
        found = torch.zeros(n, dtype=torch.bool, device=z.device)
        clean_wrong = found
        for step in range(self.steps + 1):  # the last pass only scores the final iterate
            if step == self.steps:
                logits = problem.f(box(z + delta))
            else:
                _, logits, grad = loss_and_grad(problem.f, box(z + delta), labels)
            adversarial = logits.argmax(dim=1) != labels
            if step == 0:  # delta = 0: the clean prediction
                clean_wrong = adversarial | (logits.argmax(dim=1) != problem.y)
            norm = threat.norm(delta)
            best, best_norm, found = keep_smallest(best, best_norm, found, delta, norm, adversarial)
            if step == self.steps:
                break
            delta = delta + cosine(1.0, self.alpha_final, step, self.steps) * self._direction(grad)
            eps = torch.minimum(torch.where(adversarial, eps * (1 - self.gamma), eps * (1 + self.gamma)), worst)
            delta = delta * (eps / threat.norm(delta).clamp_min(1e-12)).view(view)
            delta = box(z + delta) - z  # the perturbation the model sees next
        return MinimalPerturbation(
            delta=best, found=found, min_snr_db=minimal_snr_db(self, z, best, found, clean_wrong)
        )

    def _direction(self, grad: Tensor) -> Tensor:
        """The gradient at unit L2 norm; a random unit direction where it is exactly zero."""
        view = (-1,) + (1,) * (grad.dim() - 1)
        size = grad.flatten(1).norm(dim=1)
        zero = size == 0
        if zero.any():
            noise = self._normal(grad)
            grad = torch.where(zero.view(view), noise, grad)
            size = torch.where(zero, noise.flatten(1).norm(dim=1), size)
        return grad / size.clamp_min(1e-12).view(view)

    def _perturbation(self, problem: Problem, eps: Tensor, prepared: MinimalPerturbation) -> Tensor:
        """The minimal delta where it fits the ball of radius `eps`, its projection onto the ball otherwise."""
        return self.threat.project(prepared.delta, eps)

    def _min_snr_db(self, problem: Problem, prepared: MinimalPerturbation) -> Tensor:
        return prepared.min_snr_db
