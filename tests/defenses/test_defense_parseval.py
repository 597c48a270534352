"""Parseval retraction: convergence toward a tight frame, batched == per-layer, row sampling."""

from __future__ import annotations

import pytest
import torch

from adv_smooth.defenses.parseval import Parseval, parseval_retraction_
from adv_smooth.utils.errors import UserError


def _near_orthogonal(rows: int, cols: int, noise: float, seed: int) -> torch.Tensor:
    """Orthonormal rows (or columns, when tall) plus noise: singular values near 1, where the
    iteration sigma -> (1 + beta) sigma - beta sigma^3 is a contraction toward 1 for small beta."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(max(rows, cols), min(rows, cols), generator=g, dtype=torch.float64))
    base = q.T if rows <= cols else q
    return base + noise * torch.randn(rows, cols, generator=g, dtype=torch.float64)


def _tight_frame_error(w: torch.Tensor) -> float:
    w = w.reshape(w.shape[0], -1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return torch.linalg.matrix_norm(gram - torch.eye(len(gram), dtype=w.dtype)).item()


@pytest.mark.parametrize(("rows", "cols"), [(16, 40), (40, 16), (24, 24)])
def test_retraction_converges_monotonically(rows: int, cols: int) -> None:
    w = _near_orthogonal(rows, cols, noise=0.05, seed=rows)
    errors = [_tight_frame_error(w)]
    for _ in range(200):
        parseval_retraction_([w], beta=0.01)
        errors.append(_tight_frame_error(w))
    assert all(b < a for a, b in zip(errors, errors[1:]))
    # Linear rate 1 - 2 beta near the fixed point: 0.98^200 ~ 0.018.
    assert errors[-1] < 0.05 * errors[0]


def test_singular_values_follow_the_scalar_map() -> None:
    w = _near_orthogonal(8, 20, noise=0.2, seed=3)
    sigma = torch.linalg.svdvals(w)
    parseval_retraction_([w], beta=0.1)
    torch.testing.assert_close(torch.linalg.svdvals(w), (1.1 * sigma - 0.1 * sigma**3).sort(descending=True).values)


def _model_like_weights(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [
        (8, 3, 3, 3),
        (8, 8, 3, 3),
        (8, 8, 3, 3),
        (16, 8, 3, 3),
        (16, 8, 1, 1),
        (16, 16, 3, 3),
        (16, 16, 3, 3),
        (10, 16),
        (16,),
        (8, 72),
    ]
    return [0.2 * torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]


def test_batched_equals_per_layer() -> None:
    batched = _model_like_weights(0)
    single = [w.clone() for w in batched]
    parseval_retraction_(batched, beta=0.05)
    for w in single:
        parseval_retraction_([w], beta=0.05)
    for a, b in zip(batched, single):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # An explicit formula per layer, no bmm involved; 1-D tensors untouched.
    originals = _model_like_weights(0)
    for new, old in zip(batched, originals):
        if old.dim() < 2:
            assert torch.equal(new, old)
            continue
        m = old.reshape(old.shape[0], -1)
        torch.testing.assert_close(new.reshape_as(m), 1.05 * m - 0.05 * m @ m.T @ m, rtol=0, atol=1e-6)


def test_row_fraction_changes_only_sampled_rows() -> None:
    weights = _model_like_weights(1)
    before = [w.clone() for w in weights]
    parseval_retraction_(weights, beta=0.05, row_fraction=0.25, generator=torch.Generator().manual_seed(0))
    for new, old in zip(weights, before):
        if old.dim() < 2:
            continue
        new2, old2 = new.reshape(new.shape[0], -1), old.reshape(old.shape[0], -1)
        changed = (new2 != old2).any(1)
        assert int(changed.sum()) == max(1, round(0.25 * old.shape[0]))
        s = old2[changed]
        torch.testing.assert_close(new2[changed], 1.05 * s - 0.05 * s @ s.T @ s, rtol=0, atol=1e-10)


def test_row_fraction_draws_independent_subsets_per_layer() -> None:
    weights = [torch.randn(32, 5, dtype=torch.float64) for _ in range(6)]
    before = [w.clone() for w in weights]
    parseval_retraction_(weights, beta=0.05, row_fraction=0.25, generator=torch.Generator().manual_seed(1))
    masks = {tuple((a != b).any(1).tolist()) for a, b in zip(weights, before)}
    assert len(masks) > 1


def test_defense_hooks_and_model_options() -> None:
    from adv_smooth.models.preact_resnet import PreActResNet

    defense = Parseval(beta=0.01)
    assert defense.model_options == {"scaled_conv": True, "residual": "convex"}
    assert Parseval(scaled_conv=False, convex_residual=False).model_options == {}
    assert Parseval(convex_residual=False).model_options == {"scaled_conv": True}
    torch.manual_seed(0)
    model = PreActResNet(num_classes=10, in_channels=1, width=4, blocks=(1, 1), **defense.model_options)
    before = {n: p.clone() for n, p in model.named_parameters()}
    defense.after_optimizer_step(model)
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) == (p.dim() < 2), name  # linear.weight included
        assert p.grad is None
    frozen = PreActResNet(num_classes=10, in_channels=1, width=4, blocks=(1,))
    frozen.linear.weight.requires_grad_(False)
    kept = frozen.linear.weight.clone()
    defense.after_optimizer_step(frozen)
    assert torch.equal(frozen.linear.weight, kept)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"beta": -0.1}, "beta"),
        ({"beta": float("inf")}, "beta"),
        ({"row_fraction": 0.0}, "row_fraction"),
        ({"row_fraction": 1.5}, "row_fraction"),
    ],
)
def test_validation(kwargs: dict, key: str) -> None:
    with pytest.raises(UserError, match=rf"^{key}="):
        Parseval(**kwargs)
