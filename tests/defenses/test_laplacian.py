"""The two dense forms of the smoothness numerics: same values and gradients as autograd through the textbook
formula, gradcheck of the hand-written backward passes, the cost model's choice, channels-last taps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adv_smooth.defenses.laplacian import dense_form, laplacian_smoothness


def _reference(a: torch.Tensor, y: torch.Tensor, m: int) -> torch.Tensor:
    """Autograd through the textbook formula: normalized features, W, L = D - W, L^m formed."""
    u = F.normalize(a.flatten(1), dim=1)
    w = u @ u.T
    w = w - torch.diag(torch.diagonal(w))
    lap = torch.diag(w.sum(1)) - w
    return torch.trace(y.T @ torch.linalg.matrix_power(lap, m) @ y)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("form", ["factored", "explicit"])
def test_dense_forms_match_reference_values_and_gradients(m: int, form: str) -> None:
    g = torch.Generator().manual_seed(m)
    a = torch.randn(10, 3, 2, 2, generator=g, dtype=torch.float64).relu()
    a[0] = 0  # an all-zero activation: an isolated vertex, zero gradient
    y = F.one_hot(torch.randint(0, 4, (10,), generator=g), 4).double()
    a.requires_grad_(True)
    ours = laplacian_smoothness(a, y, m=m, dense=form)
    (grad,) = torch.autograd.grad(ours, a)
    ref = _reference(a, y, m)
    (ref_grad,) = torch.autograd.grad(ref, a)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("form", ["factored", "explicit"])
def test_dense_forms_gradcheck_including_labels(m: int, form: str) -> None:
    """gradcheck on activations and a soft label matrix (m = 3 chains the apply and the quadratic form)."""
    g = torch.Generator().manual_seed(10 + m)
    a = torch.randn(6, 5, generator=g, dtype=torch.float64).abs().requires_grad_(True)
    y = torch.rand(6, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a_, y_: laplacian_smoothness(a_, y_, m=m, dense=form), (a, y))


def test_dense_form_choice() -> None:
    assert dense_form(128, 10, 2) == "factored" and dense_form(64, 10, 2) == "explicit"
    assert dense_form(128, 200, 1) == "explicit" and dense_form(512, 10, 1) == "factored"
    with pytest.raises(ValueError, match="dense"):
        laplacian_smoothness(torch.rand(4, 2), torch.eye(4), dense="sparse")


def test_channels_last_taps_give_the_same_loss_and_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 3, 4, 4, generator=g, dtype=torch.float64)
    y = F.one_hot(torch.arange(6) % 3, 3).double()
    for form in ("factored", "explicit"):
        grads = []
        for t in (a.clone(), a.clone().contiguous(memory_format=torch.channels_last)):
            t.requires_grad_(True)
            s = laplacian_smoothness(t, y, m=2, dense=form)
            grads.append((s, torch.autograd.grad(s, t)[0]))
        torch.testing.assert_close(grads[0][0], grads[1][0])
        torch.testing.assert_close(grads[0][1], grads[1][1])


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("form", ["factored", "explicit"])
def test_bf16_autocast_runs_the_loss_in_float32(m: int, form: str) -> None:
    """Under `trainer.precision=bf16-mixed` the taps arrive in bf16: the hand-written passes still run (in float32)
    and give the float32 loss of those taps, gradient included."""
    g = torch.Generator().manual_seed(m)
    a = torch.rand(12, 4, 3, 3, generator=g).to(torch.bfloat16)
    y = F.one_hot(torch.arange(12) % 3, 3)
    results = []
    for autocast in (True, False):
        t = a.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            s = laplacian_smoothness(t, y, m=m, dense=form)
        (grad,) = torch.autograd.grad(s, t)
        assert s.dtype == torch.float32 and grad.dtype == torch.bfloat16
        results.append((s, grad.float()))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=2e-2, atol=1e-3)
