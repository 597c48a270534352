"""Laplacian smoothness: the fast operators against a brute-force reference built with loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adv_smooth.defenses.base import TrainBatch
from adv_smooth.defenses.laplacian import knn_mask, laplacian_smoothness, similarity_graph
from adv_smooth.defenses.smoothness import LaplacianSmoothness
from adv_smooth.utils.errors import UserError

N, C = 12, 4


def _data(seed: int = 0, signed: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(N, 3, 2, 2, generator=g, dtype=torch.float64)
    a = a if signed else a.relu()
    labels = torch.randint(0, C, (N,), generator=g)
    labels[:C] = torch.arange(C)  # every class present
    return a, labels, F.one_hot(labels, C).to(torch.float64)


def _reference_w(a: torch.Tensor, k: int) -> torch.Tensor:
    """W with explicit loops: cosine per pair, then per-row kNN and the OR symmetrization."""
    flat = a.flatten(1)
    n = len(flat)
    w = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            if i != j:
                w[i, j] = torch.dot(flat[i], flat[j]) / (flat[i].norm() * flat[j].norm())
    if k == 0:
        return w
    keep = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: -w[i, j].item())
        for j in others[:k]:
            keep[i, j] = keep[j, i] = True
    return w * keep


def _reference_s(a: torch.Tensor, y: torch.Tensor, m: int, k: int) -> torch.Tensor:
    w = _reference_w(a, k)
    lap = torch.diag(w.sum(1)) - w
    return torch.trace(y.T @ torch.linalg.matrix_power(lap, m) @ y)


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("k", [0, 3])
@pytest.mark.parametrize("signed", [False, True])
def test_matches_bruteforce(m: int, k: int, signed: bool) -> None:
    a, _, y = _data(seed=m + 10 * k, signed=signed)
    expected = _reference_s(a, y, m, k)
    assert laplacian_smoothness(a, y, m=m, k=k).item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-5)


def test_graph_matches_bruteforce_and_knn_is_symmetric() -> None:
    a, _, _ = _data(1)
    for k in (0, 1, 3, N - 1, N + 5):
        w = similarity_graph(a, k)
        torch.testing.assert_close(w, _reference_w(a, min(k, N - 1)), rtol=1e-12, atol=1e-12)
        assert torch.equal(w, w.T)
        assert torch.all(w.diagonal() == 0)
    mask = knn_mask(torch.randn(N, N, dtype=torch.float64), 2)
    assert torch.equal(mask, mask.T) and not mask.diagonal().any()
    assert (mask.sum(1) >= 2).all()


def test_m1_is_sum_of_weights_between_classes() -> None:
    """trace(Y^T L Y) = 1/2 sum_{i,j} W_ij ||y_i - y_j||^2 = sum over ordered pairs (i, j), y_i != y_j,
    of W_ij = 2 * sum_{i<j, y_i != y_j} W_ij  (one-hot rows: ||y_i - y_j||^2 = 2 [y_i != y_j]).
    The dense case also equals the class-sum form sum_{c != c'} <S_c, S_c'>."""
    for k in (0, 3):
        a, labels, y = _data(2)
        w = similarity_graph(a, k)
        differ = labels[:, None] != labels[None, :]
        s = laplacian_smoothness(a, y, m=1, k=k)
        assert s.item() == pytest.approx(w[differ].sum().item(), rel=1e-10)
        assert s.item() == pytest.approx(2 * torch.triu(w * differ, diagonal=1).sum().item(), rel=1e-10)
    u = F.normalize(a.flatten(1), dim=1)
    class_sums = y.T @ u
    gram = class_sums @ class_sums.T
    assert laplacian_smoothness(a, y, m=1).item() == pytest.approx((gram.sum() - gram.trace()).item(), rel=1e-10)


def test_zero_activation_is_an_isolated_vertex() -> None:
    a, labels, y = _data(3)
    a[0] = 0
    keep = torch.arange(N) != 0
    for m in (1, 2, 3):
        assert laplacian_smoothness(a, y, m=m).item() == pytest.approx(
            laplacian_smoothness(a[keep], y[keep], m=m).item(), rel=1e-10
        )


@pytest.mark.parametrize("k", [0, 3])
def test_gradient_reaches_activations(k: int) -> None:
    a, _, y = _data(4)
    a.requires_grad_(True)
    laplacian_smoothness(a, y, m=2, k=k).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0 and torch.isfinite(a.grad).all()


def test_float32_and_bf16_taps_are_computed_in_float32() -> None:
    a, _, y = _data(5)
    ref = laplacian_smoothness(a, y, m=2).item()
    assert laplacian_smoothness(a.float(), y.float(), m=2).item() == pytest.approx(ref, rel=1e-4)
    s16 = laplacian_smoothness(a.bfloat16(), y, m=2)
    assert s16.dtype == torch.float32 and s16.item() == pytest.approx(ref, rel=2e-2)


def _batch(labels: torch.Tensor, clean: torch.Tensor) -> TrainBatch:
    n = len(labels)
    return TrainBatch(torch.zeros(n, 1, 2, 2), labels, clean, torch.ones(n))


def test_defense_loss_uses_clean_samples_only() -> None:
    a, labels, y = _data(6)
    taps = [a, a.flip(1) * 2 + 0.1, (a + 1).relu()]
    clean = torch.arange(N) % 3 != 0
    defense = LaplacianSmoothness(gamma=0.1, m=2, k=0)
    assert defense.needs_activations
    logits = torch.zeros(N, C)
    term = defense.loss_terms(_batch(labels, clean), logits, taps)["smooth"]
    s = [laplacian_smoothness(t[clean], y[clean], m=2) for t in taps]
    expected = 0.1**2 * ((s[1] - s[0]).abs() + (s[2] - s[1]).abs()) / 2
    assert term.item() == pytest.approx(expected.item(), rel=1e-10)
    # Perturbing an adversarial (unclean) sample's activations changes nothing.
    taps[1][0] += 5
    assert defense.loss_terms(_batch(labels, clean), logits, taps)["smooth"].item() == pytest.approx(term.item())


def test_defense_layer_selection() -> None:
    a, labels, _ = _data(7)
    taps = [a, a * 3 + 1, a.square(), (a - 0.5).relu()]
    batch = _batch(labels, torch.ones(N, dtype=torch.bool))
    logits = torch.zeros(N, C)
    picked = LaplacianSmoothness(gamma=1.0, m=1, layers=[0, -1]).loss_terms(batch, logits, taps)["smooth"]
    full = LaplacianSmoothness(gamma=1.0, m=1).loss_terms(batch, logits, [taps[0], taps[-1]])["smooth"]
    assert picked.item() == pytest.approx(full.item())
    with pytest.raises(UserError, match="^layers="):
        LaplacianSmoothness(layers=[0, 9]).loss_terms(batch, logits, taps)


def test_defense_gradient_flows_through_model_taps() -> None:
    from adv_smooth.models.preact_resnet import PreActResNet

    torch.manual_seed(0)
    model = PreActResNet(num_classes=C, in_channels=1, width=4, blocks=(1, 1))
    x = torch.rand(8, 1, 8, 8)
    labels = torch.arange(8) % C
    logits, taps = model(x, return_activations=True)
    term = LaplacianSmoothness(gamma=0.5, m=2, k=3).loss_terms(
        _batch(labels, torch.ones(8, dtype=torch.bool)), logits, taps
    )["smooth"]
    term.backward()
    assert math.isfinite(term.item())
    assert model.stem.weight.grad is not None and model.stem.weight.grad.abs().sum() > 0


def test_too_few_clean_samples() -> None:
    a, labels, _ = _data(8)
    clean = torch.zeros(N, dtype=torch.bool)
    clean[0] = True
    with pytest.raises(UserError, match="at least 2 clean samples.*1 of 12"):
        LaplacianSmoothness().loss_terms(_batch(labels, clean), torch.zeros(N, C), [a, a])


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"gamma": -1.0}, "gamma"),
        ({"m": 0}, "m"),
        ({"m": 1.5}, "m"),
        ({"m": True}, "m"),
        ({"k": -1}, "k"),
        ({"k": 2.0}, "k"),
        ({"layers": [3]}, "layers"),
        ({"layers": ["a", "b"]}, "layers"),
    ],
)
def test_validation(kwargs: dict, key: str) -> None:
    with pytest.raises(UserError, match=rf"^{key}="):
        LaplacianSmoothness(**kwargs)
