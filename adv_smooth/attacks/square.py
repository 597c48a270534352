"""The Square attack (Andriushchenko et al. 2020): score-based random search, L-inf and L2, no gradients.

Why it is here: a white-box result is only trustworthy if an attack that never looks at a gradient does
not do better. Masked or useless gradients (quantized inputs, saturated softmax, shattered gradients)
stop PGD but not a random search on the model's scores. The algorithm follows the paper and AutoAttack's
`square.py`:

* the loss is the margin logit_y - max_{j != y} logit_j; a candidate is kept when it lowers the margin,
  and an image is broken (and no longer queried) once its margin is <= 0;
* L-inf: start from vertical stripes of +-eps (one sign per column and channel), then each query
  overwrites a random s x s window with one random sign per channel at +-eps;
* L2: start from a grid of "double square" bumps (`eta`) with random signs, rescaled to the sphere of
  radius eps; each query moves the mass of a second random window into the first one, adds a fresh
  bump there, and rescales the whole perturbation back to radius eps;
* the window side s follows the paper's schedule: a fraction p of the image, p_init halved at fixed
  fractions of the query budget (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 out of 10,000).

Differences from AutoAttack's code, all in the direction of the paper's own code: every image draws its
own window position, signs and bump orientation (AutoAttack shares one window per batch), and the budget
is per image. Everything is batched on the device and drawn from the attack's generator.

`queries` counts every model evaluation per image, the initial point included. The default is 1000,
not the paper's 5000 (AutoAttack's standard run): the p schedule is rescaled to the budget, so a short
run keeps the same coarse-to-fine path, and on the small undefended models this tool studies most
successes come within the first few hundred queries; set `queries: 5000` for the literature's setting.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from adv_smooth.attacks.base import FORWARD_PASS, Attack, Problem
from adv_smooth.attacks.gradients import margin
from adv_smooth.utils.errors import MAX_ITERATIONS, require, require_int

#: (rescaled iteration, divisor of p_init): p = p_init / divisor up to that iteration out of 10,000.
P_SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256))
P_FINAL_DIVISOR = 512
RESAMPLE_TRIES = 10  # L-inf: redraw a window's signs this often when they would change nothing


def square_fraction(p_init: float, iteration: int, queries: int) -> float:
    """The fraction p of the image a window covers at `iteration` of a run of `queries`."""
    it = int(iteration / queries * 10000)
    for threshold, divisor in P_SCHEDULE:
        if it <= threshold:
            return p_init / divisor
    return p_init / P_FINAL_DIVISOR


def _rectangle_bump(rows: int, cols: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Nested rectangles around the centre, the k-th weighted 1/(k+1)^2 (the paper's `eta_rectangles`)."""
    rings = max(rows // 2 + 1, cols // 2 + 1)
    i = (torch.arange(rows, device=device) - rows // 2).abs()
    j = (torch.arange(cols, device=device) - cols // 2).abs()
    ring = torch.maximum(i[:, None], j[None, :])  # Chebyshev distance: inside every ring k >= ring
    weights = 1.0 / torch.arange(1, rings + 1, device=device, dtype=dtype) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)  # tail[k] = sum of weights of rings k..rings-1
    bump = tail[ring]
    return bump / bump.norm().clamp_min(1e-12)


def square_bump(size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The L2 update's unit-norm s x s pattern: a positive bump on the top half, a negative one below."""
    top = _rectangle_bump(size // 2, size, device, dtype)
    bottom = -_rectangle_bump(size - size // 2, size, device, dtype)
    bump = torch.cat([top, bottom], dim=0)
    return bump / bump.norm().clamp_min(1e-12)


class Square(Attack):
    """Square attack in the L-inf cube or the L2 ball of per-image radius eps.

    Args:
        queries: model evaluations per image, the initial point included (default 1000; see the module
            docstring for why not 5000).
        p_init: the initial fraction of the image a window covers (default 0.8, AutoAttack's standard).
        **common: the options every attack takes (see `Attack`).
    """

    name = "square"
    iterative = True
    uses_gradients = False

    def __init__(self, queries: int = 1000, p_init: float = 0.8, **common: Any) -> None:
        require_int("queries", queries, 1, high=MAX_ITERATIONS, meaning="model evaluations per image")
        require(
            isinstance(p_init, (int, float)) and 0 < p_init <= 1,
            "p_init",
            p_init,
            "expected a fraction in (0, 1] (the share of the image the first windows cover)",
        )
        super().__init__(**common)
        self.queries = int(queries)
        self.p_init = float(p_init)

    def passes_per_image(self, levels: int) -> float:
        """`queries` forward passes per level, no gradient: an upper bound, the search stops on the images it
        breaks (see `Attack.passes_per_image`)."""
        return self._labels_passes() + levels * self.queries * FORWARD_PASS

    # -- plumbing -----------------------------------------------------------------------------------------
    def _margin(self, problem: Problem, z: Tensor, delta: Tensor, labels: Tensor) -> Tensor:
        """Margin at box(z + delta), the very image the base class returns for `delta`."""
        point = problem.space.box(z + delta)
        return margin(problem.f(point.view(-1, *problem.z.shape[1:])), labels)

    def _signs(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        return torch.where(self._draw(like.new_empty(shape), "uniform") < 0.5, -1.0, 1.0).to(like.dtype)

    def _corners(self, n: int, size: int, height: int, width: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """Per image, the top-left corner of a random size x size window inside a height x width image."""
        u = self._draw(like.new_empty(2, n), "uniform")
        rows = (u[0] * (height - size + 1)).long().clamp_(0, height - size)
        cols = (u[1] * (width - size + 1)).long().clamp_(0, width - size)
        return rows, cols

    @staticmethod
    def _window(corner: tuple[Tensor, Tensor], size: int, channels: int) -> tuple[Tensor, ...]:
        """Advanced-indexing tuple selecting each image's window: `t[index]` has shape (n, c, s, s)."""
        rows, cols = corner
        offsets = torch.arange(size, device=rows.device)
        n = rows.shape[0]
        return (
            torch.arange(n, device=rows.device).view(n, 1, 1, 1),
            torch.arange(channels, device=rows.device).view(1, channels, 1, 1),
            (rows[:, None] + offsets).view(n, 1, size, 1),
            (cols[:, None] + offsets).view(n, 1, 1, size),
        )

    def _side(self, iteration: int, height: int, width: int, channels: int, smallest: int) -> int:
        p = square_fraction(self.p_init, iteration, self.queries)
        side = max(int(round(math.sqrt(p * height * width))), smallest)
        if self.norm == "l2" and side % 2 == 0:
            side += 1
        return min(side, height, width)

    # -- the attack -----------------------------------------------------------------------------------------
    def _perturbation(self, problem: Problem, eps: Tensor, prepared: Any) -> Tensor:
        z = problem.z
        img = z.view(z.shape[0], 1, 1, -1) if z.dim() == 2 else z  # flat inputs: one row of pixels
        require(img.dim() == 4, "images", tuple(z.shape), "Square needs (N, C, H, W) or (N, D) inputs")
        eps = eps.view(-1, 1, 1, 1)
        init = self._init_linf if self.norm == "linf" else self._init_l2
        step = self._step_linf if self.norm == "linf" else self._step_l2
        delta = init(img, eps)
        best = self._margin(problem, img, delta, problem.labels)
        for iteration in range(self.queries - 1):
            active = (best > 0).nonzero().squeeze(1)
            if active.numel() == 0:
                break
            z_a, eps_a, delta_a = img[active], eps[active], delta[active]
            candidate = step(problem, z_a, eps_a, delta_a, iteration)
            new = self._margin(problem, z_a, candidate, problem.labels[active])
            better = new < best[active]
            delta[active] = torch.where(better.view(-1, 1, 1, 1), candidate, delta_a)
            best[active] = torch.where(better, new, best[active])
        return self.threat.project(delta, eps).view_as(z)

    # L-inf ------------------------------------------------------------------------------------------------
    def _init_linf(self, z: Tensor, eps: Tensor) -> Tensor:
        """Vertical stripes: one sign per image, channel and column, at +-eps."""
        n, c, _, w = z.shape
        return eps * self._signs((n, c, 1, w), z).expand_as(z).clone()

    def _step_linf(self, problem: Problem, z: Tensor, eps: Tensor, delta: Tensor, iteration: int) -> Tensor:
        """Overwrite one random window per image with one random sign per channel at +-eps."""
        n, c, h, w = z.shape
        side = self._side(iteration, h, w, c, smallest=1)
        index = self._window(self._corners(n, side, h, w, z), side, c)
        box = problem.space.box
        old = box(z + delta)[index]
        window = eps * self._signs((n, c, 1, 1), z)
        for _ in range(RESAMPLE_TRIES):  # the paper redraws signs that would leave the window unchanged
            same = ((box(z[index] + window) - old).abs() < 1e-7).flatten(1).all(dim=1)
            if not same.any():
                break
            window = torch.where(same.view(-1, 1, 1, 1), eps * self._signs((n, c, 1, 1), z), window)
        candidate = delta.clone()
        candidate[index] = window.expand(n, c, side, side)
        return candidate

    # L2 ---------------------------------------------------------------------------------------------------
    def _bumps(self, n: int, side: int, like: Tensor) -> Tensor:
        """Per image a `square_bump`, transposed for a random half of the images, shape (n, 1, s, s)."""
        bump = square_bump(side, like.device, like.dtype)
        flip = self._draw(like.new_empty(n), "uniform") < 0.5
        return torch.where(flip.view(n, 1, 1), bump.T, bump).unsqueeze(1)

    @staticmethod
    def _to_sphere(delta: Tensor, eps: Tensor) -> Tensor:
        return delta * eps / delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1).clamp_min(1e-12)

    def _init_l2(self, z: Tensor, eps: Tensor) -> Tensor:
        """A grid of up to 5 x 5 bumps of side min(H, W) // 5, random sign per image and channel, on the sphere."""
        n, c, h, w = z.shape
        side = max(min(h, w) // 5, 1)
        tiles_h, tiles_w = min(5, h // side), min(5, w // side)
        top, left = (h - side * tiles_h) // 2, (w - side * tiles_w) // 2
        delta = torch.zeros_like(z)
        for i in range(tiles_h):
            for j in range(tiles_w):
                rows = slice(top + i * side, top + (i + 1) * side)
                cols = slice(left + j * side, left + (j + 1) * side)
                delta[:, :, rows, cols] = self._bumps(n, side, z) * self._signs((n, c, 1, 1), z)
        return self._to_sphere(delta, eps)

    def _step_l2(self, problem: Problem, z: Tensor, eps: Tensor, delta: Tensor, iteration: int) -> Tensor:
        """Move window 2's mass into window 1 plus a fresh bump, then rescale to the sphere of radius eps."""
        n, c, h, w = z.shape
        side = self._side(iteration, h, w, c, smallest=3)
        first = self._window(self._corners(n, side, h, w, z), side, c)
        second = self._window(self._corners(n, side, h, w, z), side, c)
        current = problem.space.box(z + delta) - z  # what the model saw (clipping removes some energy)
        both = torch.zeros_like(z)
        both[first] = 1.0
        both[second] = 1.0
        image_energy = current.flatten(1).pow(2).sum(dim=1).view(-1, 1, 1, 1)
        window_energy = (current * both).flatten(1).pow(2).sum(dim=1).view(-1, 1, 1, 1)
        old = current[first]
        old = old / old.flatten(2).norm(dim=2).view(n, c, 1, 1).clamp_min(1e-12)
        fresh = self._bumps(n, side, z) * self._signs((n, c, 1, 1), z) + old
        per_channel = ((eps**2 - image_energy).clamp_min(0.0) / c + window_energy).sqrt()
        fresh = fresh / fresh.flatten(2).norm(dim=2).view(n, c, 1, 1).clamp_min(1e-12) * per_channel
        candidate = current.clone()
        candidate[second] = 0.0
        candidate[first] = fresh
        return self._to_sphere(candidate, eps)
