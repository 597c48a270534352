"""kNN graphs against a brute-force port of the original code's (LPN's and the report's gsp.py `laplacian`).

The original ranks each row of the cosine matrix *with* its diagonal, so a node is its own nearest
neighbour and its k keeps k - 1 others; `knn_self=True` reads `defense.k` that way.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from adv_smooth.defenses import LaplacianSmoothness, TrainBatch, laplacian_smoothness
from adv_smooth.utils.errors import UserError


def original_laplacian(x: Tensor, target: Tensor, m: int, k: int | None, classes: int) -> Tensor:
    """gsp.py's `laplacian`, line by line in float64: sort each row of W (diagonal included), keep the k
    largest, A_final = min(1, A + A^T), L = D - W * A_final, L^m by repeated products, trace(Y^T L^m Y)."""
    n = x.shape[0]
    x = x.reshape(n, -1).double()
    y = torch.zeros(n, classes, dtype=torch.float64).scatter_(1, target.view(-1, 1), 1)
    w = F.normalize(x, p=2, dim=1) @ F.normalize(x, p=2, dim=1).T
    neighbours = n if k is None else k
    if neighbours != n:
        _, ind = torch.sort(w, 1)
        a = torch.zeros(n, n, dtype=torch.float64)
        for row, value in enumerate(ind[:, -neighbours:]):
            a[row, value] = 1
        w = w * torch.minimum(torch.ones(n, n, dtype=torch.float64), a + a.T)
    lap = torch.diag(w.sum(1)) - w
    power = lap
    for _ in range(1, m):
        power = power @ lap
    return torch.trace(y.T @ power @ y)


def original_loss(relus: list[Tensor], target: Tensor, m: int, k: int | None, gamma: float, classes: int) -> Tensor:
    """`force_smooth_network` times the original's weight gamma^m."""
    s = [original_laplacian(r, target, m, k, classes) for r in relus]
    return gamma**m * sum(torch.abs(s[i] - s[i - 1]) for i in range(1, len(s))) / (len(s) - 1)


def _taps(n: int = 12, seed: int = 0) -> tuple[list[Tensor], Tensor]:
    """ReLU-like activations (non-negative, no ties) and labels over 4 classes."""
    g = torch.Generator().manual_seed(seed)
    taps = [
        torch.relu(torch.randn(n, *shape, generator=g, dtype=torch.float64) + 0.3)
        for shape in ((3, 4, 4), (5, 2, 2), (7,))
    ]
    return taps, torch.arange(n) % 4


@pytest.mark.parametrize("k_original", [2, 3, 5, 11, 12])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_knn_self_matches_the_original_graph(k_original: int, m: int) -> None:
    taps, y = _taps()
    ours = LaplacianSmoothness(gamma=0.1, m=m, k=k_original, knn_self=True)
    got = ours.loss_terms(TrainBatch.clean(taps[0], y), torch.zeros(len(y), 4), taps)["smooth"]
    expected = original_loss(taps, y, m, k_original, gamma=0.1, classes=4)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_each_layer_value_matches_and_the_convention_matters() -> None:
    taps, y = _taps(seed=1)
    one_hot = F.one_hot(y, 4)
    for a in taps:
        for k_original in (2, 4, 7):
            expected = original_laplacian(a, y, 2, k_original, 4)
            knn_self = LaplacianSmoothness(m=2, k=k_original, knn_self=True)
            torch.testing.assert_close(laplacian_smoothness(a, one_hot, 2, knn_self.neighbours), expected)
            # the project's own reading of k keeps one neighbour more: a different graph
            assert not torch.allclose(laplacian_smoothness(a, one_hot, 2, k_original), expected)
    # the dense graph (k = 0 here, k = None / n there) needs no conversion
    torch.testing.assert_close(laplacian_smoothness(taps[0], one_hot, 2, 0), original_laplacian(taps[0], y, 2, None, 4))


def test_neighbours_conversion_and_k1_refused() -> None:
    assert LaplacianSmoothness(k=5, knn_self=True).neighbours == 4
    assert LaplacianSmoothness(k=5).neighbours == 5
    assert LaplacianSmoothness(k=0, knn_self=True).neighbours == 0
    with pytest.raises(UserError, match=r"^k=1 is invalid: .*only the node itself"):
        LaplacianSmoothness(k=1, knn_self=True)
