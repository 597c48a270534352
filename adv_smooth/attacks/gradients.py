"""Input gradients for attacks: the model in crafting mode, the per-sample loss and its gradient w.r.t. the input.

Only the input is differentiated (`autograd.grad`), never the weights, and outside `inference_mode`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


def check_not_inference_mode() -> None:
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "attacks need autograd and cannot run under torch.inference_mode(); run them outside it "
            "(with Lightning: Trainer(inference_mode=False))"
        )


LossFn = Callable[[Tensor, Tensor], Tensor]  # (logits, labels) -> per-sample loss, shape (N,)


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-sample cross-entropy, the default attack loss."""
    return F.cross_entropy(logits, labels, reduction="none")


def loss_and_grad(
    f: Callable[[Tensor], Tensor], x: Tensor, labels: Tensor, loss_fn: LossFn = cross_entropy
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sample loss (cross-entropy unless `loss_fn`), logits and d(sum of loss)/dx at `x`, all detached.

    The summed loss (not the mean) is differentiated so each image's gradient does not shrink with the
    batch size. Only `x` is an input of `autograd.grad`: parameters' `.grad` stay untouched and autograd
    skips computing weight gradients altogether.
    """
    check_not_inference_mode()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        logits = f(x)
        loss = loss_fn(logits, labels)
        (grad,) = torch.autograd.grad(loss.sum(), [x])
    return loss.detach(), logits.detach(), grad


def input_gradient(f: Callable[[Tensor], Tensor], x: Tensor, labels: Tensor) -> Tensor:
    """Gradient of the cross-entropy of `f(x)` against `labels` with respect to `x` (see `loss_and_grad`)."""
    return loss_and_grad(f, x, labels)[2]


def margin(logits: Tensor, labels: Tensor) -> Tensor:
    """logit_y - max_{j != y} logit_j per sample: <= 0 means misclassified."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], -math.inf).amax(dim=1)
    return true - others
