"""FMN (Pintor et al. 2021, "Fast Minimum-norm Adversarial Attacks through Adaptive Norm Constraints"), L2 and L-inf.

Why a minimum-norm attack: it finds, per image, the smallest adversarial perturbation, i.e. the image's
minimal adversarial SNR. Accuracy at any SNR s is then the share of images whose minimal SNR is below s:
the whole robustness curve at any resolution, monotone by construction, from one run per batch (so the
search runs once in `_prepare`, whatever the number of levels).

The algorithm (as in the paper and adv-lib's `fast_minimum_norm.py`): a gradient ascent on the
logit difference max_{j != y} logit_j - logit_y with L2-normalized steps of size alpha, each followed
by a projection onto a ball whose radius eps adapts:

* adversarial now: eps <- min(eps (1 - gamma), best norm so far) (shrink towards the boundary);
* not adversarial, but an adversarial point was seen: eps <- eps (1 + gamma);
* never adversarial yet: eps <- (||delta|| + |loss| / ||grad||_dual) (1 + gamma): the linear estimate
  of the distance to the boundary (dual norm L2 for L2, L1 for L-inf), overshot by gamma. (The reference
  uses the bare estimate; on a linear model that lands exactly on the boundary, and in float arithmetic
  the iterate can creep towards it from the clean side forever: 17 of 64 images of a linear test model
  were never broken, and on the digits CNN a transcription of adv-lib's L2 FMN left 91.7 % accuracy at
  15 dB, 34.0 % with the overshoot.) Capped at the largest perturbation the [0, 1] box allows.

alpha and gamma follow cosine annealing from their initial values to alpha / 100 and 0.001. Defaults:
`steps=100` (the paper reports most of the gain within 100-200 steps on undefended models; 300 steps
changed nothing on the digits model), `gamma_init=0.05`, `alpha_init` 1.0 for L2 (adv-lib's and foolbox's default)
and 10.0 for L-inf (reported for the paper's L-inf runs; not checked against its text here): the step is
L2-normalized, so in L-inf it must be large for its coordinates to reach the cube's faces (on the digits
CNN, 1.0 and 10.0 gave the same L-inf curve within 0.3 points).

Targeted runs (`targets`, default 3): the untargeted loss follows whichever other class has the largest
logit, and the search can settle on that class's boundary when another one is nearer. On random linear
models with 4-10 classes 5-12 % of the images ended more than 1 % above the closed-form optimum (up to
1.9x); on the digits CNN the untargeted L2 curve left 33.8 % accuracy at 15 dB where 100-step L2 PGD
left 29.2 %. So, as FAB-T and APGD-T do, FMN also runs one targeted search (logit_t - logit_y) towards
each of the `targets` most likely other classes and keeps per image the smallest adversarial; with 3
targets the digits curve drops to 25.7 % (below PGD), and with K - 1 targets a linear model's optimum
is exact. Cost: (1 + targets) searches; `targets: 0` is the reference algorithm.

Norms are measured on box(z + delta) - z, the perturbation the model actually saw, and the point kept is
evaluated exactly as the base class will rebuild it. At a level, `_perturbation` returns the minimal
delta when it fits the level's ball and its projection onto the ball otherwise (a valid, in-budget
perturbation that may or may not succeed). `budget` only matters there: the search itself needs none.

`min_snr_db` per image: L2: 20 log10(||z|| / ||delta*||_2); L-inf: 20 log10(||z|| / (||delta*||_inf sqrt(D))),
the level at which the L-inf budget eps(s) = r(x, s) / sqrt(D) equals ||delta*||_inf. In both norms the
image is robust at level s iff min_snr_db < s; +inf for an image misclassified clean, -inf where no
adversarial example was found (robust at every level, as far as this attack can tell).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from adv_smooth.attacks.base import FORWARD_PASS, GRADIENT_PASS, Attack, Problem
from adv_smooth.attacks.budget import per_image_norm
from adv_smooth.attacks.gradients import loss_and_grad
from adv_smooth.attacks.square import margin
from adv_smooth.utils.errors import MAX_ITERATIONS, require, require_int

DUAL = {"l2": 2.0, "linf": 1.0}  # the dual norm of the threat model's norm
DEFAULT_ALPHA = {"l2": 1.0, "linf": 10.0}
GAMMA_FINAL = 0.001


def _logit_gap(logits: Tensor, labels: Tensor) -> Tensor:
    """max_{j != y} logit_j - logit_y: the loss FMN ascends (positive means misclassified)."""
    return -margin(logits, labels)


def keep_smallest(
    best: Tensor, best_norm: Tensor, found: Tensor, delta: Tensor, norm: Tensor, adversarial: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The minimum-norm attacks' bookkeeping: per image, `delta` replaces the best so far when it is adversarial and
    smaller; `found` marks every image broken at least once."""
    smaller = adversarial & (norm < best_norm)
    view = (-1,) + (1,) * (delta.dim() - 1)
    return torch.where(smaller.view(view), delta, best), torch.where(smaller, norm, best_norm), found | adversarial


def cosine(start: float, end: float, step: int, steps: int) -> float:
    """Cosine annealing from `start` (step 0) towards `end` (step `steps`)."""
    return end + (start - end) * (1.0 + math.cos(math.pi * step / steps)) / 2.0


@dataclass
class MinimalPerturbation:
    """The search's result for one batch."""

    delta: Tensor  # per image the smallest adversarial box(z + delta) - z found (zeros where none)
    found: Tensor  # bool (N,): an adversarial point was found
    min_snr_db: Tensor  # float32 (N,), see the module docstring


class FMN(Attack):
    """Fast minimum-norm attack in L2 or L-inf; fills `AttackResult.min_snr_db`.

    Args:
        steps: gradient steps (default 100).
        alpha_init: the initial step size in attack-space units (default: 1.0 for L2, 10.0 for L-inf).
        alpha_final: the final step size (default alpha_init / 100).
        gamma_init: the initial relative change of the radius per step (default 0.05; annealed to 0.001).
        targets: after the untargeted run, one targeted run towards each of this many most likely other
            classes (by clean logits); per image the smallest adversarial wins (default 3; 0 is the
            reference algorithm; see the module docstring).
        **common: the options every attack takes (see `Attack`); the budget is only used at the levels.
    """

    name = "fmn"
    iterative = True
    minimal_norm = True

    def __init__(
        self,
        steps: int = 100,
        alpha_init: float | None = None,
        alpha_final: float | None = None,
        gamma_init: float = 0.05,
        targets: int = 3,
        **common: Any,
    ) -> None:
        require_int("steps", steps, 1, high=MAX_ITERATIONS)
        require(alpha_init is None or alpha_init > 0, "alpha_init", alpha_init, "expected a positive step size")
        require(alpha_final is None or alpha_final > 0, "alpha_final", alpha_final, "expected a positive step size")
        require(0 < gamma_init < 1, "gamma_init", gamma_init, "expected a fraction in (0, 1)")
        require(
            isinstance(targets, int) and targets >= 0,
            "targets",
            targets,
            "expected an integer >= 0 (targeted runs towards the most likely other classes)",
        )
        super().__init__(**common)
        self.steps = int(steps)
        self.alpha_init = float(alpha_init if alpha_init is not None else DEFAULT_ALPHA[self.norm])
        self.alpha_final = float(alpha_final if alpha_final is not None else self.alpha_init / 100.0)
        self.gamma_init = float(gamma_init)
        self.targets = int(targets)

    def passes_per_image(self, levels: int) -> float:
        """One search for every level: the clean score, then `steps + 1` gradients for the untargeted run and
        each target (an upper bound with fewer than `targets + 1` classes; see `Attack.passes_per_image`)."""
        return self._labels_passes() + FORWARD_PASS + (1 + self.targets) * (self.steps + 1) * GRADIENT_PASS

    def _prepare(self, problem: Problem) -> MinimalPerturbation:
        """The untargeted search, then one targeted search per `targets` class; per image the smallest."""
        z, labels = problem.z, problem.labels
        with torch.no_grad():
            clean = problem.f(z)
        clean_wrong = (clean.argmax(dim=1) != problem.y) | (clean.argmax(dim=1) != labels)
        best, best_norm, found = self._search(problem, None)
        runner_up = clean.scatter(1, labels[:, None], -math.inf).argsort(dim=1, descending=True)
        for rank in range(min(self.targets, clean.shape[1] - 1)):
            delta, norm, hit = self._search(problem, runner_up[:, rank])
            smaller = hit & (norm < best_norm)
            best = torch.where(smaller.view(-1, *([1] * (z.dim() - 1))), delta, best)
            best_norm = torch.where(smaller, norm, best_norm)
            found |= hit
        return MinimalPerturbation(delta=best, found=found, min_snr_db=self._snr(z, best, found, clean_wrong))

    def _search(self, problem: Problem, target: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """One FMN run: per image the smallest adversarial delta seen, its norm and whether one was seen.

        `target=None`: ascend max_{j != y} logit_j - logit_y (the reference); else logit_target - logit_y.
        Adversarial always means misclassified (argmax != label), whichever class the loss aims at.
        """
        z, labels, box, threat = problem.z, problem.labels, problem.space.box, self.threat
        n, view = z.shape[0], (-1,) + (1,) * (z.dim() - 1)

        def gap(logits: Tensor, y: Tensor) -> Tensor:
            if target is None:
                return _logit_gap(logits, y)
            return (logits.gather(1, target[:, None]) - logits.gather(1, y[:, None])).squeeze(1)

        # the largest perturbation the box allows (inf without clipping)
        room = torch.maximum(box(torch.full_like(z, math.inf)) - z, z - box(torch.full_like(z, -math.inf)))
        worst = threat.norm(room)
        eps = torch.full((n,), math.inf, dtype=z.dtype, device=z.device)
        best_norm = torch.full_like(eps, math.inf)
        best = torch.zeros_like(z)
        found = torch.zeros(n, dtype=torch.bool, device=z.device)
        delta = torch.zeros_like(z)
        for step in range(self.steps + 1):  # the last pass only scores the final iterate
            loss, logits, grad = loss_and_grad(problem.f, box(z + delta), labels, gap)
            norm = threat.norm(delta)
            adversarial = logits.argmax(dim=1) != labels
            best, best_norm, found = keep_smallest(best, best_norm, found, delta, norm, adversarial)
            if step == self.steps:
                break
            gamma = cosine(self.gamma_init, GAMMA_FINAL, step, self.steps)
            alpha = cosine(self.alpha_init, self.alpha_final, step, self.steps)
            to_boundary = loss.abs() / grad.flatten(1).norm(p=DUAL[self.norm], dim=1).clamp_min(1e-12)
            eps = torch.where(
                adversarial,
                torch.minimum(eps * (1 - gamma), best_norm),
                torch.where(found, eps, norm + to_boundary) * (1 + gamma),
            )
            eps = torch.minimum(eps, worst)
            direction = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(view)
            delta = threat.project(delta + alpha * direction, eps.view(view))
            delta = box(z + delta) - z  # the perturbation the model sees next
        return best, best_norm, found

    def _snr(self, z: Tensor, best: Tensor, found: Tensor, clean_wrong: Tensor) -> Tensor:
        return minimal_snr_db(self, z, best, found, clean_wrong)

    def _perturbation(self, problem: Problem, eps: Tensor, prepared: MinimalPerturbation) -> Tensor:
        """The minimal delta where it fits the ball of radius `eps`, its projection onto the ball otherwise."""
        return self.threat.project(prepared.delta, eps)

    def _min_snr_db(self, problem: Problem, prepared: MinimalPerturbation) -> Tensor:
        return prepared.min_snr_db


def minimal_snr_db(attack: Attack, z: Tensor, best: Tensor, found: Tensor, clean_wrong: Tensor) -> Tensor:
    """The per-image level at which `best` just fits `attack`'s budget (see the module docstring); shared by
    every minimum-norm attack (FMN, DDN)."""
    size = attack.threat.norm(best).float()
    if attack.norm == "linf":
        size = size * math.sqrt(z[0].numel())
    snr = 20.0 * (torch.log10(per_image_norm(z.float())) - torch.log10(size))
    snr = torch.where(found, snr, torch.full_like(snr, -math.inf))
    return torch.where(clean_wrong, torch.full_like(snr, math.inf), snr)
