"""Natural noise at an exact per-image SNR: how much worse the adversary is than chance at the same energy.

Five laws (`kind`), each drawn per image and sized so that the perturbation that reaches the model, after clamping
to the image range, has the budget's L2 norm (||delta||_2 = r at an SNR budget; eps sqrt(D) in L-inf, the same
number): the SNR measured on the output is the level itself. Where clamping cannot reach it (an image at the box's
corners), the noise is as large as the box allows and the run's measured SNR (in the records) says what it got.

* `gaussian`: N(0, 1) per value; `uniform`: U(-1, 1) per value;
* `impulse` (salt and pepper): values set to the box's top or bottom (each with probability 1/2) in a random
  order until the energy is reached, the last one only part of the way, so the norm is exact;
* `shot` (Poisson): x' = Poisson(lambda x) / lambda with lambda chosen for the energy, then rescaled exactly;
* `lowfreq`: Gaussian noise drawn at a quarter of the resolution (at least 1 x 1) and upsampled bilinearly.

The exact size after clamping is found by bisection on the scale of the drawn direction (clamping only shrinks a
perturbation, and the clamped norm grows with the scale). Drawn, not searched: no pass through the model.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from adv_smooth.attacks.base import Attack, Problem
from adv_smooth.attacks.budget import per_image_norm
from adv_smooth.attacks.threat import DISPLAY
from adv_smooth.utils.errors import require

KINDS = ("gaussian", "uniform", "impulse", "shot", "lowfreq")
_FAR = 1e6  # beyond any image range: box(z + _FAR) is the box's top


class NaturalNoise(Attack):
    """Noise of one natural law (`kind`, see the module docstring) at exactly the budget's L2 energy.

    Args: `kind`, and the options every attack takes (see `Attack`); `labels` has no effect.
        kind: the noise law: gaussian | uniform | impulse | shot | lowfreq.
    """

    name = "natural"
    uses_labels = False
    uses_gradients = False

    def __init__(self, kind: str = "gaussian", **options: Any) -> None:
        super().__init__(**options)
        require(kind in KINDS, "kind", kind, f"expected one of {list(KINDS)}")
        self.kind = kind

    def describe(self) -> str:
        return f"{self.kind} noise {DISPLAY[self.norm]} {self.budget}"

    def passes_per_image(self, levels: int) -> float:
        """No pass through the model: the noise is drawn, not searched."""
        return 0.0

    def _perturbation(self, problem: Problem, eps: Tensor, prepared: Any) -> Tensor:
        z, box = problem.z, problem.space.box
        target = (eps * math.sqrt(z[0].numel()) if self.norm == "linf" else eps).flatten()
        if self.kind == "impulse":
            return self._impulse(z, box, target)
        return _fit(z, self._direction(z, target), target, box)

    def _direction(self, z: Tensor, target: Tensor) -> Tensor:
        if self.kind == "gaussian":
            return self._normal(z)
        if self.kind == "uniform":
            return 2 * self._uniform(z) - 1
        if self.kind == "shot":
            pixels = z.clamp_min(0)
            lam = (pixels.flatten(1).sum(dim=1) / target.clamp_min(1e-12) ** 2).clamp(1e-6, 1e9)
            lam = lam.view(-1, *[1] * (z.dim() - 1))
            noise = torch.poisson(pixels * lam, generator=self.generator) / lam - pixels
            return torch.where(per_image_norm(noise).view_as(lam) > 0, noise, self._normal(z))
        h, w = z.shape[-2:]  # lowfreq
        coarse = self._normal(z.new_empty(*z.shape[:-2], max(1, h // 4), max(1, w // 4)))
        return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)

    def _impulse(self, z: Tensor, box: Any, target: Tensor) -> Tensor:
        flat = z.flatten(1)
        top, bottom = box(z + _FAR).flatten(1) - flat, box(z - _FAR).flatten(1) - flat
        salt = self._uniform(flat) < 0.5
        jump = torch.where(salt, top, bottom)
        order = torch.argsort(self._uniform(flat), dim=1)
        jump = jump.gather(1, order)
        energy = (jump**2).cumsum(dim=1)
        full = energy <= target.unsqueeze(1) ** 2  # whole jumps that fit
        before = torch.where(full, energy, torch.zeros_like(energy)).amax(dim=1)
        first_partial = full.sum(dim=1).clamp_max(flat.shape[1] - 1)
        rest = (target**2 - before).clamp_min(0).sqrt()
        partial = jump.gather(1, first_partial.unsqueeze(1)).squeeze(1)
        part = torch.sign(partial) * torch.minimum(rest, partial.abs())
        delta = torch.where(full, jump, torch.zeros_like(jump))
        not_all = full.sum(dim=1) < flat.shape[1]
        delta[torch.arange(len(flat)), first_partial] += torch.where(not_all, part, torch.zeros_like(part))
        out = torch.empty_like(delta).scatter_(1, order, delta)
        return out.view_as(z)


def _fit(z: Tensor, direction: Tensor, target: Tensor, box: Any, iters: int = 40) -> Tensor:
    """box(z + c d) - z with, per image, the scale c at which its norm is `target` (bisection; clamping only
    shrinks it), or the largest the box allows."""
    view = (-1,) + (1,) * (z.dim() - 1)
    scale = target / per_image_norm(direction).flatten().clamp_min(1e-12)

    def size(c: Tensor) -> Tensor:
        return per_image_norm(box(z + c.view(view) * direction) - z).flatten()

    low, high = scale.clone(), scale.clone()
    short = size(high) < target * (1 - 1e-6)
    for _ in range(40):  # grow until the clamped norm reaches the target (or give up: the box is too small)
        if not short.any():
            break
        high = torch.where(short, high * 2, high)
        short = short & (size(high) < target * (1 - 1e-6))
    need = size(low) < target * (1 - 1e-6)
    for _ in range(iters if need.any() else 0):
        mid = (low + high) / 2
        below = size(mid) < target
        low = torch.where(need & below, mid, low)
        high = torch.where(need & ~below, mid, high)
    c = torch.where(need, low, scale)
    return box(z + c.view(view) * direction) - z
