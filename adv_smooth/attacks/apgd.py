"""APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"): PGD whose step size needs no tuning, in L-inf or L2, at per-image budgets.

Why not plain PGD: a fixed step size and a fixed number of steps overstate robustness, most of all on
defenses that flatten or mask the loss (Parseval, graph smoothness, FGSM training). APGD

* starts with step eta = 2 eps, moves with momentum 0.75 (x <- P(x + 0.75 (z - x) + 0.25 (x - x_prev)));
* checks at the checkpoints w_j (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06))
  whether the loss rose in fewer than rho = 75 % of the steps since the last checkpoint, or whether
  the step was not halved last time and the best loss did not improve; if so it halves eta and
  restarts from the best point so far;
* keeps per image the first misclassified point it found (and else the point of highest loss).

Losses: `loss="ce"` (APGD-CE) or `"dlr"` (the difference of logits ratio, invariant to the logits'
scale, so a defense that shrinks logits cannot fake robustness); `targets=k > 0` runs the targeted
DLR version (APGD-T) against each of the k most likely wrong classes in turn. Restarts and targets run
only on images not yet broken, exactly as AutoAttack does. Every image's run is independent of the
other images of the batch (eval-mode BatchNorm), so the subsets change nothing but the random draws.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from adv_smooth.attacks.base import FORWARD_PASS, GRADIENT_PASS, Attack, Problem, needs_more_steps
from adv_smooth.attacks.gradients import LossFn, cross_entropy, loss_and_grad, margin
from adv_smooth.attacks.threat import DISPLAY
from adv_smooth.utils.errors import MAX_ITERATIONS, require, require_int

LOSSES = ("ce", "dlr")
MOMENTUM = 0.75


def dlr_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Untargeted DLR: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3), per sample (needs >= 3 classes)."""
    top, _ = logits.sort(dim=1, descending=True)
    true = logits.gather(1, labels[:, None]).squeeze(1)
    other = torch.where(top[:, 0] == true, top[:, 1], top[:, 0])
    return -(true - other) / (top[:, 0] - top[:, 2] + 1e-12)


def targeted_dlr_loss(target: Tensor) -> LossFn:
    """Targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2), per sample (needs >= 4 classes)."""

    def loss(logits: Tensor, labels: Tensor) -> Tensor:
        top, _ = logits.sort(dim=1, descending=True)
        true = logits.gather(1, labels[:, None]).squeeze(1)
        wanted = logits.gather(1, target[:, None]).squeeze(1)
        return -(true - wanted) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)

    return loss


def checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD may halve its step: ceil(p_j * steps) for the sequence above."""
    p = [0.0, 0.22]
    while p[-1] < 1.0:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({math.ceil(round(q * steps, 6)) for q in p[1:] if q < 1.0} - {0})


def _per_image(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


class APGD(Attack):
    """Auto-PGD with the CE or DLR loss, untargeted or targeted (`targets`), `restarts` runs.

    Args:
        steps: iterations per run (AutoAttack: 100).
        loss: "ce" or "dlr" (with `targets > 0` the loss is the targeted DLR).
        targets: 0 for the untargeted attack, k for APGD-T against the k most likely wrong classes.
        restarts: runs per target (each from a new random start), on the images still robust.
        rho: the share of loss-increasing steps below which the step size is halved (0.75).
        random_start: start each run uniformly in the ball (AutoAttack does).
        **common: the options every attack takes (see `Attack`), `norm` among them.
    """

    name = "apgd"
    iterative = True

    def __init__(
        self,
        steps: int = 100,
        loss: str = "ce",
        targets: int = 0,
        restarts: int = 1,
        rho: float = 0.75,
        random_start: bool = True,
        **common: Any,
    ) -> None:
        require_int("steps", steps, 1, high=MAX_ITERATIONS)
        require(loss in LOSSES, "loss", loss, f"expected one of {list(LOSSES)}")
        require_int("targets", targets, 0, high=MAX_ITERATIONS)
        require_int("restarts", restarts, 1, high=MAX_ITERATIONS)
        require(0 < rho < 1, "rho", rho, "expected a number in (0, 1)")
        super().__init__(**common)
        self.steps = steps
        self.loss = loss
        self.targets = targets
        self.restarts = restarts
        self.rho = float(rho)
        self.random_start = bool(random_start)

    def describe(self) -> str:
        kind = f"T{self.targets}" if self.targets else self.loss.upper()
        return f"APGD-{kind} {DISPLAY[self.norm]} {self.steps} steps"

    def passes_per_image(self, levels: int) -> float:
        """Per level the clean score, then per target and restart `steps + 1` gradients: an upper bound, the
        later runs attack only the images still robust (see `Attack.passes_per_image`)."""
        runs = max(1, self.targets) * self.restarts
        return self._labels_passes() + levels * (FORWARD_PASS + runs * (self.steps + 1) * GRADIENT_PASS)

    def _perturbation(self, problem: Problem, eps: Tensor, prepared: Any) -> Tensor:
        z = problem.z
        with torch.no_grad():
            logits = problem.f(z)
        delta = torch.zeros_like(z)
        broken = logits.argmax(dim=1) != problem.y
        targets: list[Tensor | None] = [None]
        if self.targets:
            require(logits.shape[1] >= 4, "targets", self.targets, "the targeted DLR loss needs at least 4 classes")
            ranked = logits.argsort(dim=1, descending=True)
            targets = [ranked[:, rank] for rank in range(1, min(self.targets, logits.shape[1] - 1) + 1)]
        improving = torch.zeros_like(broken)
        for target in targets:
            for _ in range(self.restarts):
                todo = (~broken).nonzero().squeeze(1)
                if todo.numel() == 0:
                    return delta, improving
                loss_fn = self._loss_fn(None if target is None else target[todo])
                delta[todo], broken[todo], rising = self._run(problem, eps, todo, loss_fn)
                improving[todo] |= rising
        return delta, improving

    def _loss_fn(self, target: Tensor | None) -> LossFn:
        if target is not None:
            return targeted_dlr_loss(target)
        return dlr_loss if self.loss == "dlr" else cross_entropy

    def _run(self, problem: Problem, eps: Tensor, todo: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor, Tensor]:
        """One APGD run on the images `todo`: (their delta, whether it breaks them, whether it was still closing in
        on the boundary over the interval between its last two checkpoints: `needs_more_steps`, for the honesty
        checks)."""
        z, y, labels, eps = problem.z[todo], problem.y[todo], problem.labels[todo], eps[todo]
        box, threat, f_loss = problem.space.box, self.threat, loss_fn

        def project(point: Tensor) -> Tensor:
            return box(z + threat.project(point - z, eps))

        start = threat.random_start(z, eps, self._draw) if self.random_start else torch.zeros_like(z)
        x = project(z + start)
        loss, logits, grad = loss_and_grad(problem.f, x, labels, f_loss)
        broken = logits.argmax(dim=1) != y
        closest = margin(logits, y)  # the smallest margin so far, per image (convergence: `needs_more_steps`)
        x_adv = x.clone()  # first misclassified point per image (else the start)
        x_best, grad_best, loss_best = x.clone(), grad.clone(), loss.clone()
        step = 2.0 * eps * torch.ones_like(eps)
        x_prev = x.clone()
        marks = set(checkpoints(self.steps))
        last_mark = 0
        closest_at_mark = window_start = closest  # at the last checkpoint, and at the one before
        window = self.steps
        increases = torch.zeros_like(loss)
        loss_best_at_mark = loss_best.clone()
        reduced_at_mark = torch.ones_like(broken)
        previous_loss = loss.clone()
        for i in range(1, self.steps + 1):
            a = 1.0 if i == 1 else MOMENTUM
            candidate = project(x + threat.step(grad, step))
            moved = project(x + a * (candidate - x) + (1.0 - a) * (x - x_prev))
            x_prev, x = x, moved
            loss, logits, grad = loss_and_grad(problem.f, x, labels, f_loss)
            closest = torch.minimum(closest, margin(logits, y))
            newly = (logits.argmax(dim=1) != y) & ~broken
            x_adv = torch.where(_per_image(newly, x), x, x_adv)
            broken |= newly
            increases += (loss > previous_loss).to(increases.dtype)
            previous_loss = loss
            better = loss > loss_best
            x_best = torch.where(_per_image(better, x), x, x_best)
            grad_best = torch.where(_per_image(better, x), grad, grad_best)
            loss_best = torch.where(better, loss, loss_best)
            if i in marks:
                oscillating = increases <= self.rho * (i - last_mark)
                stalled = ~reduced_at_mark & (loss_best_at_mark >= loss_best)
                halve = oscillating | stalled
                reduced_at_mark = halve
                window_start, closest_at_mark, window = closest_at_mark, closest, i - last_mark
                loss_best_at_mark = loss_best.clone()
                step = torch.where(_per_image(halve, step), step / 2.0, step)
                x = torch.where(_per_image(halve, x), x_best, x)
                grad = torch.where(_per_image(halve, x), grad_best, grad)
                increases.zero_()
                last_mark = i
        x_final = torch.where(_per_image(broken, x), x_adv, x_best)
        if last_mark < self.steps:  # steps after the last checkpoint: they are the window
            window_start, window = closest_at_mark, self.steps - last_mark
        return x_final - z, broken, needs_more_steps(window_start, closest, window)
