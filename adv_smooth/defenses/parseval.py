"""Parseval networks (Cisse et al. 2017): keep every weight matrix close to a Parseval tight frame.

After each optimizer step, every weight W with >= 2 dims, seen as (out, rest), takes one step of
W <- (1 + beta) W - beta W W^T W, the gradient step on ||W^T W - I||^2 / 4 with step beta (a retraction
toward W W^T = I when out <= rest, toward W^T W = I otherwise). With singular values sigma the step
maps sigma -> (1 + beta) sigma - beta sigma^3, whose fixed point is 1: layers stay close to
1-Lipschitz, which bounds how much an input perturbation can grow through the network.

Decisions:

* The final linear layer is included: the report says "every weight W with >= 2 dims", and a
  classifier with a large Lipschitz constant would undo the bound of the layers below it.
* Layers with the same (out, rest) shape are stacked and retracted with one `bmm` + `baddbmm`:
  ResNets repeat the same conv shapes, so a step costs a handful of batched kernels instead of one
  small matmul chain per layer. W W^T W is evaluated as (W W^T) W when out <= rest, else as
  W (W^T W), whichever multiplies the smaller Gram matrix.
* `row_fraction < 1` retracts a random subset of rows per layer (Cisse et al.'s cheaper variant):
  W_S <- (1 + beta) W_S - beta W_S W_S^T W_S, the other rows untouched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from adv_smooth.defenses.base import Defense
from adv_smooth.utils.errors import require


def _retract(w: Tensor, beta: float) -> Tensor:
    """One retraction step on a stack of matrices (G, r, c)."""
    if w.shape[1] <= w.shape[2]:
        return torch.baddbmm(w, torch.bmm(w, w.transpose(1, 2)), w, beta=1 + beta, alpha=-beta)
    return torch.baddbmm(w, w, torch.bmm(w.transpose(1, 2), w), beta=1 + beta, alpha=-beta)


def _row_subsets(groups: int, rows: int, keep: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """(groups, keep) row indices, an independent uniform subset per layer, without replacement."""
    where = generator.device if generator is not None else device
    scores = torch.rand(groups, rows, generator=generator, device=where)
    return scores.argsort(dim=1)[:, :keep].to(device)


@torch.no_grad()
def parseval_retraction_(
    weights: Iterable[Tensor], beta: float, row_fraction: float = 1.0, generator: torch.Generator | None = None
) -> None:
    """Apply one Parseval retraction step in place to every tensor with >= 2 dims in `weights`.

    1-D tensors (biases, BatchNorm) are skipped. With `row_fraction < 1` each weight retracts
    max(1, round(row_fraction * out)) rows drawn with `generator`.
    """
    groups: dict[tuple, list[Tensor]] = defaultdict(list)
    for w in weights:
        if w.dim() >= 2:
            groups[(w.shape[0], w[0].numel(), w.dtype, w.device)].append(w)
    for (out, rest, _, device), members in groups.items():
        stacked = torch.stack([w.reshape(out, rest) for w in members])
        if row_fraction >= 1.0:
            stacked = _retract(stacked, beta)
        else:
            keep = max(1, round(row_fraction * out))
            rows = _row_subsets(len(members), out, keep, generator, device)
            layer = torch.arange(len(members), device=device)[:, None]
            stacked[layer, rows] = _retract(stacked[layer, rows], beta)
        torch._foreach_copy_(members, [s.view_as(w) for s, w in zip(stacked, members)])


@dataclass
class Parseval(Defense):
    """Parseval retraction after each optimizer step, plus the model changes the method assumes.

    `scaled_conv` divides conv weights by sqrt(2 kh kw + 1) in the forward pass (a k x k conv with
    Parseval-tight reshaped kernel is then 1-Lipschitz) and `convex_residual` replaces x + f(x) by
    0.5 x + 0.5 f(x) (a sum of two 1-Lipschitz maps is 2-Lipschitz, the convex mix stays 1). A
    disabled option is left out of `model_options` rather than forced off, so it composes.

    Args:
        beta: the retraction step: W <- (1 + beta) W - beta W W^T W after every optimizer step.
        row_fraction: the share of each weight's rows (drawn at random each step) the retraction updates.
        scaled_conv: divide conv weights by sqrt(2 kh kw + 1) in the forward pass.
        convex_residual: residual blocks compute 0.5 x + 0.5 f(x) instead of x + f(x).
    """

    beta: float = 0.01
    row_fraction: float = 1.0
    scaled_conv: bool = True
    convex_residual: bool = True

    def __post_init__(self) -> None:
        require(
            isinstance(self.beta, (int, float)) and 0 <= self.beta < float("inf"),
            "beta",
            self.beta,
            "a finite number >= 0",
        )
        require(
            isinstance(self.row_fraction, (int, float)) and 0 < self.row_fraction <= 1,
            "row_fraction",
            self.row_fraction,
            "a fraction in (0, 1]",
        )
        self.model_options = {}
        if self.scaled_conv:
            self.model_options["scaled_conv"] = True
        if self.convex_residual:
            self.model_options["residual"] = "convex"

    def after_optimizer_step(self, model: nn.Module) -> None:
        """Retract every trainable >= 2-dim parameter; rows are drawn from the global RNG (seeded runs repeat)."""
        if self.beta == 0:
            return
        parseval_retraction_((p for p in model.parameters() if p.requires_grad), self.beta, self.row_fraction)
