"""The attack extension point, and the plumbing every attack shares.

An attack is a small object (MadryLab `robustness` style). Its public verb is

    x_adv = attack.perturb(model, x, y, snr_db)      # x in [0, 1], x_adv clamped to [0, 1]

A subclass only writes the part that differs: `_perturbation(problem, eps, prepared)` returns the
perturbation *before* clamping, in the attack space. The base class owns everything around it, so FGSM,
PGD and the noise test cannot drift apart:

* the budget (`budget="snr"`: per image from the SNR; `budget="linf"`: a fixed `eps_255`/255);
* the space (`space="pixel"`, or `space="normalized"`: the budget is computed on (x - mean) / std and
  the perturbation is added there, i.e. delta_pixel = delta_norm * std; this reproduces the LPN paper's
  "attack after normalization" column);
* the labels the loss is taken against (`labels="true"`, or `"predicted"`: the model's own argmax,
  Kurakin et al.'s cure for label leaking in adversarial training);
* BatchNorm (`bn_mode="eval"`: craft in eval mode and restore every module's previous mode, so crafting
  neither updates BN running statistics nor depends on the batch; `"keep"`: leave modes alone);
* clamping to the valid image range, and the input gradient.

Gradients: `input_gradient` uses `torch.autograd.grad(..., inputs=[x])`, so no `.grad` is ever written
into the model's parameters (an attack inside a training step must not pollute the optimizer's
gradients), and it enables grad itself, so it works under `torch.no_grad()`. It cannot work under
`torch.inference_mode()`: callers (e.g. a Lightning validation loop) must run attacks outside it
(`Trainer(inference_mode=False)`); we raise a clear error instead of failing deep inside autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adv_smooth.attacks.budget import linf_eps, snr_eps
from adv_smooth.errors import UserError, require

BUDGETS = ("snr", "linf")
SPACES = ("pixel", "normalized")
LABELS = ("true", "predicted")
BN_MODES = ("eval", "keep")


def label_mode(value: object) -> object:
    """`labels` as given, except that a boolean true becomes "true": typed unquoted on the command line
    (`defense.labels=true`), YAML reads the word as a boolean."""
    return "true" if value is True else value


# --------------------------------------------------------------------------------------------- helpers
@contextmanager
def crafting_mode(model: nn.Module, bn_mode: str = "eval") -> Iterator[None]:
    """Put `model` in eval mode for the block (`bn_mode="eval"`) and restore every module's own mode.

    Modes are restored module by module, not with one `model.train(flag)`, so a model that had, say,
    frozen BN layers inside a training model comes back exactly as it was.
    """
    if bn_mode == "keep":
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _check_not_inference_mode() -> None:
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "attacks need autograd and cannot run under torch.inference_mode(); run them outside it "
            "(with Lightning: Trainer(inference_mode=False))"
        )


def loss_and_grad(f: Callable[[Tensor], Tensor], x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample cross-entropy, logits and d(sum of CE)/dx at `x`, all detached.

    The summed loss (not the mean) is differentiated so each image's gradient does not shrink with the
    batch size. Only `x` is an input of `autograd.grad`: parameters' `.grad` stay untouched and autograd
    skips computing weight gradients altogether.
    """
    _check_not_inference_mode()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        logits = f(x)
        loss = F.cross_entropy(logits, labels, reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), [x])
    return loss.detach(), logits.detach(), grad


def input_gradient(f: Callable[[Tensor], Tensor], x: Tensor, labels: Tensor) -> Tensor:
    """Gradient of the cross-entropy of `f(x)` against `labels` with respect to `x` (see `loss_and_grad`)."""
    return loss_and_grad(f, x, labels)[2]


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

    @classmethod
    def of(cls, model: nn.Module, space: str) -> Space:
        """Pixel space, or the normalized space of `model` (its `mean`/`std` buffers)."""
        if space == "pixel":
            return cls()
        stats = _find_normalization(model)
        if stats is None:
            raise UserError(
                f"space='normalized' needs a model with `mean` and `std` buffers; {type(model).__name__} has none"
            )
        return cls(*stats)

    @property
    def is_pixel(self) -> bool:
        return self.mean is None

    def from_pixel(self, x: Tensor) -> Tensor:
        return x if self.mean is None else (x - self.mean) / self.std

    def to_pixel(self, z: Tensor) -> Tensor:
        """Back to pixels, clamped to [0, 1] (straight-through gradient in normalized space)."""
        if self.mean is None:
            return z
        return _ClampStraightThrough.apply(z * self.std + self.mean)

    def box(self, z: Tensor) -> Tensor:
        """Clamp to the valid image range, expressed in this space."""
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


@dataclass
class Problem:
    """One batch to attack, already moved to the attack space."""

    f: Callable[[Tensor], Tensor]  # the model as a function of an attack-space input
    z: Tensor  # clean images in the attack space
    y: Tensor  # true labels (what "broken" means)
    labels: Tensor  # labels the attack loss is taken against (true or predicted)
    space: Space


@dataclass
class AttackResult:
    """What `Attack.craft` returns; `x_adv` is what `perturb` returns.

    `delta` is the perturbation before clamping, in the attack space, and `eps` the per-image budget
    in that space: tests and diagnostics check the nominal SNR on `z + delta` (see `measured_snr_db`).
    """

    x_adv: Tensor
    delta: Tensor
    eps: Tensor
    z: Tensor  # clean images in the attack space (== x in pixel space)


# ------------------------------------------------------------------------------------------ the base class
class Attack:
    """Base class: budget, space, labels, BN handling and clamping; subclasses implement `_perturbation`.

    Args (keyword-only, shared by every attack):
        budget: "snr" (per-image budget from the SNR passed to `perturb`) or "linf" (fixed `eps_255`;
            the SNR argument is then ignored and may be None).
        eps_255: the L-inf budget in 1/255 units, required with `budget="linf"` (in the attack space).
        space: "pixel" or "normalized" (see the module docstring).
        labels: "true" or "predicted" (craft against the model's own argmax predictions).
        bn_mode: "eval" (craft in eval mode, restore modes afterwards) or "keep".
        generator: a `torch.Generator` on the images' device for the random laws (None: global RNG).
    """

    name: str = "attack"
    uses_labels: bool = True  # False for attacks that ignore the model's loss (random noise)

    def __init__(
        self,
        *,
        budget: str = "snr",
        eps_255: float | None = None,
        space: str = "pixel",
        labels: str = "true",
        bn_mode: str = "eval",
        generator: torch.Generator | None = None,
    ) -> None:
        require(budget in BUDGETS, "budget", budget, f"expected one of {list(BUDGETS)}")
        require(space in SPACES, "space", space, f"expected one of {list(SPACES)}")
        labels = label_mode(labels)
        require(labels in LABELS, "labels", labels, f"expected one of {list(LABELS)}")
        require(bn_mode in BN_MODES, "bn_mode", bn_mode, f"expected one of {list(BN_MODES)}")
        if budget == "linf":
            require(eps_255 is not None and eps_255 >= 0, "eps_255", eps_255, "budget='linf' needs eps_255 >= 0")
        self.budget = budget
        self.eps_255 = eps_255
        self.space = space
        self.labels = labels
        self.bn_mode = bn_mode
        self.generator = generator

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "generator")
        return f"{type(self).__name__}({opts})"

    # -- public API -----------------------------------------------------------------------------------
    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, snr_db: float | None = None) -> Tensor:
        """Adversarial images for `x` (in [0, 1]) at `snr_db`, clamped to [0, 1], detached."""
        return self.craft(model, x, y, snr_db).x_adv

    def craft(self, model: nn.Module, x: Tensor, y: Tensor, snr_db: float | None = None) -> AttackResult:
        """Like `perturb`, but also return the unclamped perturbation and the budget."""
        return self.craft_levels(model, x, y, [snr_db])[0]

    def craft_levels(
        self, model: nn.Module, x: Tensor, y: Tensor, snr_levels: Sequence[float | None]
    ) -> list[AttackResult]:
        """Attack one batch at several SNR levels, sharing the work that does not depend on the budget.

        (FGSM's gradient at the clean image is the same at every level, so it is computed once.)
        """
        _check_not_inference_mode()
        if x.is_inference():  # a batch made under inference_mode can still be attacked outside it
            x, y = x.clone(), y.clone()
        with crafting_mode(model, self.bn_mode), torch.no_grad():
            space = Space.of(model, self.space)
            z = space.from_pixel(x.detach())

            def f(z_in: Tensor) -> Tensor:
                return model(space.to_pixel(z_in))

            labels = f(z).argmax(dim=1) if (self.uses_labels and self.labels == "predicted") else y
            problem = Problem(f=f, z=z, y=y, labels=labels, space=space)
            prepared = self._prepare(problem)
            results = []
            for level in snr_levels:
                eps = self._eps(z, level)
                delta = self._perturbation(problem, eps, prepared)
                x_adv = space.to_pixel(space.box(z + delta)).detach()
                results.append(AttackResult(x_adv=x_adv, delta=delta, eps=eps, z=z))
        return results

    # -- for subclasses ---------------------------------------------------------------------------------
    def _prepare(self, problem: Problem) -> Any:
        """Work shared by every budget level of one batch (e.g. the clean gradient). Default: nothing."""
        return None

    def _perturbation(self, problem: Problem, eps: Tensor, prepared: Any) -> Tensor:
        """The perturbation in the attack space, before clamping; `eps` is shaped (N, 1, ..., 1)."""
        raise NotImplementedError

    def _eps(self, z: Tensor, snr_db: float | None) -> Tensor:
        if self.budget == "linf":
            return linf_eps(self.eps_255, z)
        if snr_db is None:
            raise UserError(f"{self.name}: budget='snr' needs an SNR level (got None)")
        return snr_eps(z, snr_db)

    def _uniform(self, like: Tensor) -> Tensor:
        """U(0, 1) shaped like `like`, from the attack's generator."""
        return torch.rand(like.shape, generator=self.generator, dtype=like.dtype, device=like.device)

    def _normal(self, like: Tensor) -> Tensor:
        """N(0, 1) shaped like `like`, from the attack's generator."""
        return torch.randn(like.shape, generator=self.generator, dtype=like.dtype, device=like.device)
