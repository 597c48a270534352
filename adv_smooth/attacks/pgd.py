"""PGD (Madry et al. 2018) in L-infinity or L2 at the same per-image budget as FGSM.

Iterates  delta <- project_eps(box(x + delta) - x + step(grad, alpha)),  alpha = step_size * eps / steps,
where `project` and `step` are the threat model's (`threat.py`: the sign step and the cube for L-inf,
the normalized gradient and the ball for L2), from a random start in the ball, with `restarts`
independent runs. Per image it returns the best
candidate seen: a misclassified one if any (an image is broken if any restart, at any step, breaks it),
otherwise the one of highest loss.

"PGD is never weaker than FGSM" holds by construction: with `include_fgsm=True` (the default) the
sign-FGSM point, computed exactly as `FGSM(magnitude="sign")` with the same budget, space and labels
computes it, is one of the candidates. So an image broken by that FGSM is broken by this PGD, and a
single-step attack beating the iterative one, the gradient-masking symptom the report's Table 1 shows,
cannot be an artefact of a weak PGD. (Exact in pixel space; the only caveat is non-deterministic
kernels on some GPUs.)
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from adv_smooth.attacks.base import FORWARD_PASS, GRADIENT_PASS, Attack, Problem, needs_more_steps
from adv_smooth.attacks.gradients import input_gradient, loss_and_grad, margin
from adv_smooth.utils.errors import MAX_FLOAT, MAX_ITERATIONS, is_number, require, require_int


class _Best:
    """Per-sample best candidate: misclassified beats correct; then higher loss wins."""

    def __init__(self, like: Tensor) -> None:
        n = like.shape[0]
        self.delta = torch.zeros_like(like)
        self.broken = torch.zeros(n, dtype=torch.bool, device=like.device)
        self.loss = torch.full((n,), -torch.inf, dtype=torch.float32, device=like.device)

    def consider(self, delta: Tensor, loss: Tensor, logits: Tensor, y: Tensor) -> None:
        broken = logits.argmax(dim=1) != y
        loss = loss.float()
        better = (broken & ~self.broken) | ((broken == self.broken) & (loss > self.loss))
        self.delta = torch.where(better.view(-1, *([1] * (delta.dim() - 1))), delta, self.delta)
        self.broken |= broken
        self.loss = torch.where(better, loss, self.loss)


class PGD(Attack):
    """Projected gradient descent (ascent on the loss) in the ball of per-image radius eps (`norm`).

    Args:
        steps: gradient steps per restart (default 10).
        step_size: alpha relative to eps * (1 / steps); alpha = step_size * eps / steps (default 2.5,
            so the walk can cross the ball a couple of times).
        random_start: start each restart uniformly in the ball (default True).
        restarts: independent runs; per image the best candidate over all of them is kept.
        include_fgsm: also consider the sign-FGSM point, so this PGD is never weaker than FGSM.
        **common: the options every attack takes (see `Attack`).
    """

    name = "pgd"
    iterative = True

    def __init__(
        self,
        steps: int = 10,
        step_size: float = 2.5,
        random_start: bool = True,
        restarts: int = 1,
        include_fgsm: bool = True,
        **common: Any,
    ) -> None:
        require_int("steps", steps, 1, high=MAX_ITERATIONS)
        require(
            is_number(step_size) and 0 < step_size <= MAX_FLOAT,
            "step_size",
            step_size,
            f"expected a number in (0, {MAX_FLOAT:g}] (alpha = step_size * eps / steps)",
        )
        require_int("restarts", restarts, 1, high=MAX_ITERATIONS)
        super().__init__(**common)
        self.steps = int(steps)
        self.step_size = float(step_size)
        self.random_start = bool(random_start)
        self.restarts = int(restarts)
        self.include_fgsm = bool(include_fgsm)

    def passes_per_image(self, levels: int) -> float:
        """The shared clean gradient (with `include_fgsm`), then per level the FGSM candidate's score and per
        restart `steps` gradients and the final iterate's score (see `Attack.passes_per_image`)."""
        fgsm = GRADIENT_PASS if self.include_fgsm else 0.0
        per_level = (FORWARD_PASS if self.include_fgsm else 0.0) + self.restarts * (
            self.steps * GRADIENT_PASS + FORWARD_PASS
        )
        return self._labels_passes() + fgsm + levels * per_level

    def _prepare(self, problem: Problem) -> Tensor | None:
        """The clean gradient, shared by every level's FGSM candidate."""
        return input_gradient(problem.f, problem.z, problem.labels) if self.include_fgsm else None

    def _evaluate(self, problem: Problem, delta: Tensor) -> tuple[Tensor, Tensor]:
        """Loss and logits at box(z + delta), the very image the base class returns for `delta`."""
        logits = problem.f(problem.space.box(problem.z + delta))
        return F.cross_entropy(logits, problem.labels, reduction="none"), logits

    def _perturbation(self, problem: Problem, eps: Tensor, prepared: Tensor | None) -> Tensor:
        z, space, threat = problem.z, problem.space, self.threat
        best = _Best(z)
        if prepared is not None:
            fgsm_delta = threat.step(prepared, eps)  # the same expression as FGSM(magnitude="sign")
            best.consider(fgsm_delta, *self._evaluate(problem, fgsm_delta), problem.y)
        alpha = self.step_size * eps / self.steps
        window = max(1, math.ceil(self.steps / 5))  # the last fifth of the steps: still closing in on the boundary?
        improving = torch.zeros(len(z), dtype=torch.bool, device=z.device)
        for _ in range(self.restarts):
            delta = threat.random_start(z, eps, self._draw) if self.random_start else torch.zeros_like(z)
            closest = torch.full((len(z),), math.inf, dtype=z.dtype, device=z.device)
            before = closest
            for step in range(self.steps):
                if step == self.steps - window:
                    before = closest  # the smallest margin before the last steps (inf when they are all the steps)
                point = space.box(z + delta)
                loss, logits, grad = loss_and_grad(problem.f, point, problem.labels)
                best.consider(delta, loss, logits, problem.y)
                closest = torch.minimum(closest, margin(logits, problem.y))
                delta = threat.project(point - z + threat.step(grad, alpha), eps)
            final_loss, final_logits = self._evaluate(problem, delta)
            best.consider(delta, final_loss, final_logits, problem.y)
            closest = torch.minimum(closest, margin(final_logits, problem.y))
            improving |= torch.isfinite(before) & needs_more_steps(before, closest, window)
        return best.delta, improving
