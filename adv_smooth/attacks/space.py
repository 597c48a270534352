"""The space an attack perturbs in: pixels in [0, 1], or the model's normalized input (its `mean`/`std` buffers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from adv_smooth.utils.errors import UserError


class _ClampStraightThrough(torch.autograd.Function):
    """clamp(x, 0, 1) whose backward is the identity.

    The normalized-space model sees exactly the pixels the attack will return (so what the attack
    evaluates is what the evaluator scores), while float round-off at the image borders cannot zero
    the gradient of a pixel.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


@dataclass
class Space:
    """Where the attack adds its perturbation: pixels, or the model's normalized input (x - mean) / std.

    `lo`/`hi` are the images of pixel values 0 and 1, so `box` in this space is the [0, 1] clamp.
    """

    mean: Tensor | None = None  # None: pixel space, every map is the identity (no round-off)
    std: Tensor | None = None
    clip: bool = True  # False: no [0, 1] box (the LPN paper's unclamped normalized-space attack)

    @classmethod
    def of(cls, model: nn.Module, space: str, clip: bool = True) -> Space:
        """Pixel space, or the normalized space of `model` (its `mean`/`std` buffers)."""
        if space == "pixel":
            return cls(clip=clip)
        stats = _find_normalization(model)
        if stats is None:
            raise UserError(
                f"space='normalized' needs a model with `mean` and `std` buffers; {type(model).__name__} has none"
            )
        return cls(*stats, clip=clip)

    @property
    def is_pixel(self) -> bool:
        return self.mean is None

    def from_pixel(self, x: Tensor) -> Tensor:
        return x if self.mean is None else (x - self.mean) / self.std

    def to_pixel(self, z: Tensor) -> Tensor:
        """Back to pixels, clamped to [0, 1] (straight-through gradient in normalized space)."""
        if self.mean is None:
            return z
        pixels = z * self.std + self.mean
        return _ClampStraightThrough.apply(pixels) if self.clip else pixels

    def box(self, z: Tensor) -> Tensor:
        """Clamp to the valid image range, expressed in this space (the identity without `clip`)."""
        if not self.clip:
            return z
        if self.mean is None:
            return z.clamp(0.0, 1.0)
        return torch.clamp(z, min=(0.0 - self.mean) / self.std, max=(1.0 - self.mean) / self.std)


def _find_normalization(model: nn.Module) -> tuple[Tensor, Tensor] | None:
    """`model.mean`/`model.std`, or those of the first submodule that has both (a wrapped network)."""
    for module in model.modules():
        mean, std = getattr(module, "mean", None), getattr(module, "std", None)
        if isinstance(mean, Tensor) and isinstance(std, Tensor):
            return mean, std
    return None
