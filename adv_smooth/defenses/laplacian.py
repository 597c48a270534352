"""The numerics of Laplacian power smoothness (Lassance, Gripon, Ortega 2018, "Laplacian Power Networks").

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
  `k` counts the other nodes. The original code (LPN's and the report's gsp.py) ranks each row of W with
  its diagonal, where a node is its own nearest neighbour (cosine 1), so its k keeps k - 1 others:
  `knn_self=True` reads `k` that way (k_original = k_project + 1), the presets' setting.
* Speed (measured by `benchmarks/components.py`): the factored form makes O(m) skinny passes over A, each
  costing ~ n d (C + 1); the explicit graph costs one Gram matrix A A^T and its backward, ~ n^2 d, in
  GEMMs that run about twice as efficiently. So the dense loss forms W explicitly (never L^m) when
  n < (C + 1) * passes, i.e. for many classes (200 classes: 3-5x faster than factored at batch 128) or
  small batches, and stays factored otherwise (10 classes, batch >= 66 for m = 2).
* Both dense forms have hand-written backward passes (`_FactoredApply`, `_FactoredQuad`, `_Gram`):
  autograd's generic ones made ~2x more passes over A (a separate norm backward with division and
  masking, gradient accumulation of three n x d terms, transposed skinny GEMMs); these fold the
  normalization gradient into one `addcmul_` and the rest into a single GEMM. Same values, same
  gradients (checked against autograd and gradcheck in tests/defenses/test_laplacian.py).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def _features(activations: Tensor) -> Tensor:
    """(n, ...) -> (n, d), in at least float32 so bf16/fp16 taps do not wreck the sums.

    Channels-last taps (`perf.channels_last`) are flattened in their memory order (H, W, C), a view instead
    of a copy: every quantity here (norms, inner products over d) is independent of the feature order.
    """
    if activations.dim() == 4 and activations.is_contiguous(memory_format=torch.channels_last):
        activations = activations.permute(0, 2, 3, 1)
    return activations.flatten(1).to(torch.promote_types(activations.dtype, torch.float32))


NORM_FLOOR = 1e-12  # F.normalize's floor: an all-zero row becomes u_i = 0 (an isolated vertex)


def _inverse_norms(a: Tensor) -> Tensor:
    """1 / ||a_i|| as a column, with F.normalize's floor so an all-zero row becomes u_i = 0."""
    return 1.0 / a.norm(dim=1, keepdim=True).clamp_min(NORM_FLOOR)


def _project(a: Tensor, p: Tensor) -> Tensor:
    """a @ p.T for a (n, d) and p (k, d) with small k, computed as (p @ a.T).T: the same GEMM in the orientation
    where BLAS splits the long d across threads, about 2x faster on CPU for d >= 16384 (benchmarks/components.py's
    `components` rows)."""
    return (p @ a.T).T


class _Gram(torch.autograd.Function):
    """A A^T whose backward symmetrizes first: grad_A = (dG + dG^T) A, one GEMM instead of two and an add."""

    @staticmethod
    def forward(ctx, a: Tensor) -> Tensor:
        ctx.save_for_backward(a)
        return a @ a.T

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return (grad + grad.T) @ a


def cosine_gram(activations: Tensor) -> Tensor:
    """All pairwise cosines (n, n), diagonal included, from one Gram matrix (the norms are its diagonal)."""
    a = _features(activations)
    g = _Gram.apply(a)
    inv = g.diagonal().clamp_min(NORM_FLOOR**2).rsqrt()  # clamp before rsqrt: zero rows get zero gradient
    return g * (inv[:, None] * inv[None, :])  # inv_i inv_j == inv_j inv_i exactly: W stays exactly symmetric


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

    The kNN loss builds it, and the dense loss when that is cheaper than the factored form (`dense_form`).
    """
    w = cosine_gram(activations)
    keep = knn_mask(w, k) if k > 0 else ~torch.eye(len(w), dtype=torch.bool, device=w.device)
    return w * keep


def _add_norm_grad_(da: Tensor, a: Tensor, inv: Tensor) -> Tensor:
    """Turn `da`, the gradient w.r.t. A at fixed row norms, into the full one, in place.

    With u_i = inv_i a_i and inv_i = 1 / ||a_i||, the chain rule adds -inv_i^2 (a_i . da_i) a_i (the component of
    da_i along a_i is removed): one row-wise dot and one `addcmul_`, instead of the skinny GEMM that recomputing
    the dot from the factors would cost. Floored (all-zero) rows get no such term, as autograd's clamp gives.
    """
    dot = torch.linalg.vecdot(a, da).unsqueeze(1)
    return da.addcmul_(a, torch.where(inv < 1.0 / NORM_FLOOR, -inv.square() * dot, torch.zeros_like(dot)))


class _FactoredApply(torch.autograd.Function):
    """L Z = q0 * Z - Q_Z with [q0, Q_Z] = inv * (A (A^T (inv * [1, Z]))): two skinny passes over A.

    Backward: dP^T = dR^T A (one pass), then grad_A = [dR, X'] [P; dP^T] as one GEMM and the norm term
    (`_add_norm_grad_`); a third pass, A dP, only when Z itself needs a gradient (a second application, m >= 4).
    """

    @staticmethod
    def forward(ctx, a: Tensor, z: Tensor) -> Tensor:
        inv = _inverse_norms(a)
        x = torch.cat([torch.ones_like(z[:, :1]), z], dim=1)
        p = (inv * x).T @ a  # (C+1, d) = (U^T X)^T
        r = _project(a, p)  # (n, C+1); Q = inv * r
        ctx.save_for_backward(a, z, inv, x, p, r)
        return inv * r[:, :1] * z - inv * r[:, 1:]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, z, inv, x, p, r = ctx.saved_tensors
        dq = torch.cat([(grad * z).sum(1, keepdim=True), -grad], dim=1)
        dr = inv * dq
        dpt = dr.T @ a  # (C+1, d)
        dz = None
        if ctx.needs_input_grad[1]:
            dz = inv * r[:, :1] * grad + (inv * _project(a, dpt))[:, 1:]
        da = None
        if ctx.needs_input_grad[0]:
            da = _add_norm_grad_(torch.cat([dr, inv * x], dim=1) @ torch.cat([p, dpt], dim=0), a, inv)
        return da, dz


class _FactoredQuad(torch.autograd.Function):
    """<Z, L Z> = (U^T w) . (U^T 1) - ||U^T Z||^2 with w_i = ||z_i||^2: one skinny pass over A."""

    @staticmethod
    def forward(ctx, a: Tensor, z: Tensor) -> Tensor:
        inv = _inverse_norms(a)
        w = (z * z).sum(1, keepdim=True)
        x = torch.cat([torch.ones_like(w), w, z], dim=1)
        p = (inv * x).T @ a  # (C+2, d)
        ctx.save_for_backward(a, z, inv, x, p)
        return p[0] @ p[1] - p[2:].square().sum()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, z, inv, x, p = ctx.saved_tensors
        dp = torch.cat([p[1:2], p[0:1], -2.0 * p[2:]], dim=0) * grad  # (C+2, d)
        dz = None
        if ctx.needs_input_grad[1]:
            dx = inv * _project(a, dp)  # (n, C+2)
            dz = dx[:, 2:] + 2.0 * z * dx[:, 1:2]
        da = None
        if ctx.needs_input_grad[0]:
            da = _add_norm_grad_((inv * x) @ dp, a, inv)
        return da, dz


class DenseLaplacian:
    """L of the complete cosine graph, factored through the features: no n x n matrix.

    U = diag(inv) A is never materialized either: each product with U or U^T is one pass over A,
    the dominant cost (A is n x d with d up to 64 * 32 * 32); `apply` needs two passes, `quad` one.
    """

    def __init__(self, activations: Tensor) -> None:
        self.a = _features(activations)

    def apply(self, z: Tensor) -> Tensor:
        """L Z = (U U^T 1) * Z - U U^T Z, with the ones column riding along in the same products."""
        return _FactoredApply.apply(self.a, z)

    def quad(self, z: Tensor) -> Tensor:
        """<Z, L Z> = (U^T w) . (U^T 1) - ||U^T Z||^2 with w_i = ||z_i||^2: one pass, all in U^T products."""
        return _FactoredQuad.apply(self.a, z)


class KnnLaplacian:
    """L = D - W with W explicit: the symmetric kNN graph (sparse in structure, not storage), or with k = 0
    the complete graph (the dense loss's form when n is small against the class count)."""

    def __init__(self, activations: Tensor, k: int) -> None:
        self.w = similarity_graph(activations, k)
        self.deg = self.w.sum(1, keepdim=True)

    def apply(self, z: Tensor) -> Tensor:
        return self.deg * z - self.w @ z

    def quad(self, z: Tensor) -> Tensor:
        return (z * self.apply(z)).sum()


DENSE_FORMS = ("auto", "factored", "explicit")


def dense_form(n: int, columns: int, m: int) -> str:
    """ "explicit" (form the n x n graph) or "factored" (never), whichever does less work for the dense loss.

    Factored: m // 2 applications (6 pass-equivalents over A each, forward + backward) and, for odd m, a
    quadratic form (3), every pass ~ 2 n d (C + 1) flops in skinny GEMMs. Explicit: the Gram matrix and its
    backward, ~ 4 n^2 d flops in GEMMs about twice as efficient. Explicit wins when n < (C + 1) * passes.
    """
    passes = 6 * (m // 2) + 3 * (m % 2)
    return "explicit" if n < (columns + 1) * passes else "factored"


def laplacian_smoothness(activations: Tensor, labels: Tensor, m: int = 1, k: int = 0, dense: str = "auto") -> Tensor:
    """s = trace(Y^T L^m Y) for activations (n, ...) and label matrix Y (n, C), usually one-hot.

    With Z = L^(m // 2) Y: s = ||Z||^2 for even m, <Z, L Z> for odd m (L symmetric). Dense graph (k = 0):
    factored, m passes over the activations, O(m n d C), or explicit W, O(n^2 d + m n^2 C), whichever is
    cheaper (`dense="auto"`, see `dense_form`; "factored"/"explicit" force one). kNN: O(n^2 d + m n^2 C).
    Differentiable with respect to the activations (the kNN selection itself is not, the kept weights are).
    """
    if activations.shape[0] != labels.shape[0]:
        raise ValueError(f"{activations.shape[0]} activations but {labels.shape[0]} label rows")
    if dense not in DENSE_FORMS:
        raise ValueError(f"dense={dense!r}: expected one of {DENSE_FORMS}")
    if k == 0 and dense == "auto":
        dense = dense_form(activations.shape[0], labels.shape[1], m)
    # Autocast off: under bf16-mixed the GEMMs would round to bf16 and the hand-written backward passes would meet
    # bf16 gradients against float32 saved features; the loss is a few skinny passes, float32 costs little here.
    with torch.autocast(device_type=activations.device.type, enabled=False):
        lap = KnnLaplacian(activations, k) if k > 0 or dense == "explicit" else DenseLaplacian(activations)
        z = labels.to(torch.promote_types(activations.dtype, torch.float32))
        for _ in range(m // 2):
            z = lap.apply(z)
        return z.square().sum() if m % 2 == 0 else lap.quad(z)
