"""Laplacian power smoothness (Lassance, Gripon, Ortega 2018, "Laplacian Power Networks").

For each tapped activation A_l, build a similarity graph over the batch, W_ij = cos(a_i, a_j) with a
zero diagonal, L = D - W, and measure how much the labels vary over it: s_l = trace(Y^T L^m Y). The
loss asks s_l to change little from one layer to the next, so class boundaries move smoothly through
the network instead of being drawn in one layer (where a small input change can cross them).

Design decisions:

* Negative similarities are kept, not clamped. The model's taps are ReLU outputs, so every cosine is
  in [0, 1] and W is a true graph there anyway; keeping W linear in the normalized features is what
  lets the dense case run without any n x n matrix (below). For signed features L is a signed
  Laplacian and s may be negative; the kNN graph still keeps the *largest* similarities.
* Never form L^m. With L symmetric and Z = L^(m // 2) Y, trace(Y^T L^m Y) = ||Z||_F^2 for even m
  and <Z, L Z> for odd m: L is applied m // 2 times to the (n, C) matrix Y.
* Dense graph (k = 0): W = U U^T - diag(r) with U the (n, d) normalized features and r_i = ||u_i||^2
  (1, or 0 for an all-zero activation). Then deg = U (U^T 1) - r and
  L Z = deg * Z - U (U^T Z) + r * Z = (U U^T 1) * Z - U (U^T Z)   (r cancels),
  <Z, L Z> = sum_i (U U^T 1)_i ||z_i||^2 - ||U^T Z||^2,
  which cost O(n d C) and never build an n x n matrix. For m = 1 and one-hot Y this is the
  class-sum form: with S_c = sum of u_i over class c, U^T Y = [S_1 .. S_C] and
  s = ||sum_c S_c||^2 - sum_c ||S_c||^2 = sum_{c != c'} <S_c, S_c'>, one pass over the activations.
* kNN graph (k > 0): W is built explicitly (O(n^2 d)), sparsified with one `topk` + `scatter`, and
  symmetrized with OR (keep W_ij if j is among i's k nearest or i among j's), so L stays symmetric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from adv_smooth.defenses.base import Defense, TrainBatch
from adv_smooth.errors import UserError, require


def _features(activations: Tensor) -> Tensor:
    """(n, ...) -> (n, d), in at least float32 so bf16/fp16 taps do not wreck the sums."""
    return activations.flatten(1).to(torch.promote_types(activations.dtype, torch.float32))


def _inverse_norms(a: Tensor) -> Tensor:
    """1 / ||a_i|| as a column, with F.normalize's floor so an all-zero row becomes u_i = 0."""
    return 1.0 / a.norm(dim=1, keepdim=True).clamp_min(1e-12)


def knn_mask(similarity: Tensor, k: int) -> Tensor:
    """Symmetric kNN adjacency (bool, zero diagonal) from an (n, n) similarity matrix.

    Neighbours are the k largest off-diagonal similarities of each row; the OR with the transpose
    keeps the graph undirected. k >= n - 1 gives the complete graph.
    """
    n = similarity.shape[0]
    k = min(k, n - 1)
    eye = torch.eye(n, dtype=torch.bool, device=similarity.device)
    ranked = similarity.detach().masked_fill(eye, float("-inf"))
    neighbours = ranked.topk(k, dim=1).indices
    mask = torch.zeros_like(eye).scatter_(1, neighbours, True)
    return mask | mask.T


def similarity_graph(activations: Tensor, k: int = 0) -> Tensor:
    """Explicit cosine-similarity graph W (n, n), zero diagonal, kNN-sparsified when k > 0.

    The dense loss never builds it (see `DenseLaplacian`); the kNN loss and the tests do.
    """
    a = _features(activations)
    u = a * _inverse_norms(a)
    w = u @ u.T
    keep = knn_mask(w, k) if k > 0 else ~torch.eye(len(w), dtype=torch.bool, device=w.device)
    return w * keep


class DenseLaplacian:
    """L of the complete cosine graph, factored through the features: no n x n matrix.

    U = diag(inv) A is never materialized either: each product with U or U^T is one pass over A,
    the dominant cost (A is n x d with d up to 64 * 32 * 32), and `apply` needs two passes, `quad` one.
    """

    def __init__(self, activations: Tensor) -> None:
        self.a = _features(activations)
        self.inv = _inverse_norms(self.a)

    def _project(self, z: Tensor) -> Tensor:
        """(U^T Z)^T, shaped (C, d): Z^T A is several times faster than A^T Z on CPU BLAS."""
        return (self.inv * z).T @ self.a

    def apply(self, z: Tensor) -> Tensor:
        """L Z = (U U^T 1) * Z - U U^T Z, with the ones column riding along in the same products."""
        ones = torch.ones_like(z[:, :1])
        q = self.inv * (self.a @ self._project(torch.cat([ones, z], dim=1)).T)
        return q[:, :1] * z - q[:, 1:]

    def quad(self, z: Tensor) -> Tensor:
        """<Z, L Z> = (U^T w) . (U^T 1) - ||U^T Z||^2 with w_i = ||z_i||^2: one pass, all in U^T products."""
        w = (z * z).sum(1, keepdim=True)
        p = self._project(torch.cat([torch.ones_like(w), w, z], dim=1))
        return p[0] @ p[1] - p[2:].square().sum()


class KnnLaplacian:
    """L = D - W of the symmetric kNN graph, with W explicit (it is sparse in structure, not storage)."""

    def __init__(self, activations: Tensor, k: int) -> None:
        self.w = similarity_graph(activations, k)
        self.deg = self.w.sum(1, keepdim=True)

    def apply(self, z: Tensor) -> Tensor:
        return self.deg * z - self.w @ z

    def quad(self, z: Tensor) -> Tensor:
        return (z * self.apply(z)).sum()


def laplacian_smoothness(activations: Tensor, labels: Tensor, m: int = 1, k: int = 0) -> Tensor:
    """s = trace(Y^T L^m Y) for activations (n, ...) and label matrix Y (n, C), usually one-hot.

    With Z = L^(m // 2) Y: s = ||Z||^2 for even m, <Z, L Z> for odd m (L symmetric). Dense graph: m
    passes over the activations, O(m n d C); kNN: O(n^2 d + m n^2 C). Differentiable with respect to
    the activations (the kNN selection itself is not, the kept weights are).
    """
    if activations.shape[0] != labels.shape[0]:
        raise ValueError(f"{activations.shape[0]} activations but {labels.shape[0]} label rows")
    lap = KnnLaplacian(activations, k) if k > 0 else DenseLaplacian(activations)
    z = labels.to(torch.promote_types(activations.dtype, torch.float32))
    for _ in range(m // 2):
        z = lap.apply(z)
    return z.square().sum() if m % 2 == 0 else lap.quad(z)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class LaplacianSmoothness(Defense):
    """Loss gamma^m * mean_l |s_l - s_{l-1}| over consecutive tapped layers, on clean samples only.

    Only clean samples enter the graph: with adversarial training, mixing the adversarial half in
    hurt (the report, section 4.2.2). `layers` picks taps by index into the model's activation list
    (negative indices count from the end); None uses all of them.
    """

    gamma: float = 0.01
    m: int = 2
    k: int = 0
    layers: Sequence[int] | None = None

    def __post_init__(self) -> None:
        require(isinstance(self.gamma, (int, float)) and self.gamma >= 0, "defense.gamma", self.gamma, "a number >= 0")
        require(_is_int(self.m) and self.m >= 1, "defense.m", self.m, "an integer >= 1")
        require(_is_int(self.k) and self.k >= 0, "defense.k", self.k, "an integer >= 0 (0 = dense graph)")
        if self.layers is not None:
            self.layers = list(self.layers)
            require(
                all(_is_int(i) for i in self.layers) and len(self.layers) >= 2,
                "defense.layers",
                self.layers,
                "null (all taps) or a list of at least 2 integer tap indices",
            )
        self.needs_activations = True

    def _selected(self, activations: list[Tensor]) -> list[Tensor]:
        if self.layers is None:
            chosen = activations
        else:
            n = len(activations)
            require(
                all(-n <= i < n for i in self.layers),
                "defense.layers",
                self.layers,
                f"indices into the model's {n} tapped activations",
            )
            chosen = [activations[i] for i in self.layers]
        if len(chosen) < 2:
            raise UserError(f"the smoothness loss needs at least 2 tapped activations, the model gives {len(chosen)}")
        return chosen

    def loss_terms(self, batch: TrainBatch, logits: Tensor, activations: list[Tensor] | None) -> dict[str, Tensor]:
        if activations is None:
            raise ValueError("LaplacianSmoothness needs the model's activations (needs_activations=True)")
        taps = self._selected(activations)
        n = len(batch.clean_mask)
        n_clean = int(batch.clean_mask.sum())
        if n_clean < 2:
            raise UserError(
                f"the smoothness loss needs at least 2 clean samples per batch, got {n_clean} of {n}: "
                "raise the batch size or lower the adversarial fraction"
            )
        if n_clean < n:
            taps = [a[batch.clean_mask] for a in taps]
        y = F.one_hot(batch.targets[batch.clean_mask], num_classes=logits.shape[1])
        s = torch.stack([laplacian_smoothness(a, y, self.m, self.k) for a in taps])
        return {"smooth": self.gamma**self.m * (s[1:] - s[:-1]).abs().mean()}
