"""The ensemble network: log of the mean softmax, and attacks that go through every member (white-box)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adv_smooth.attacks import PGD, input_gradient
from adv_smooth.models.ensemble import Ensemble

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is as fast, and safe when shared


class Linear(nn.Module):
    """logits = A x on flattened images, recording every input it sees."""

    def __init__(self, a: Tensor) -> None:
        super().__init__()
        self.a = a
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(x.detach().clone())
        return x.flatten(1) @ self.a.T


# Member 1 reads only pixel 0, member 2 only pixel 1: a gradient with both components needs both members.
A1 = torch.tensor([[3.0, 0.0], [-1.0, 0.0]])
A2 = torch.tensor([[0.0, -2.0], [0.0, 1.5]])


def _images() -> Tensor:
    return torch.tensor([[0.2, 0.7], [0.9, 0.4], [0.5, 0.5]]).view(3, 1, 1, 2)


def test_output_is_the_log_of_the_mean_probability() -> None:
    x = _images()
    ensemble = Ensemble([Linear(A1), Linear(A2)])
    mean = (F.softmax(x.flatten(1) @ A1.T, 1) + F.softmax(x.flatten(1) @ A2.T, 1)) / 2
    assert torch.allclose(ensemble(x).exp(), mean, atol=1e-6)
    assert torch.equal(ensemble(x).argmax(1), mean.argmax(1))


def test_the_attack_gradient_is_the_known_gradient_through_both_members() -> None:
    """d/dx -log p_y, p = (s1 + s2) / 2, s_k = softmax(A_k x): -(1 / 2 p_y) sum_k s_ky (A_k[y] - s_k^T A_k)."""
    x, y = _images(), torch.tensor([0, 1, 0])
    grad = input_gradient(Ensemble([Linear(A1), Linear(A2)]), x, y).flatten(1)
    flat = x.flatten(1)
    s1, s2 = F.softmax(flat @ A1.T, 1), F.softmax(flat @ A2.T, 1)
    p_y = ((s1 + s2) / 2).gather(1, y[:, None])
    expected = torch.zeros_like(flat)
    for s, a in ((s1, A1), (s2, A2)):
        expected += s.gather(1, y[:, None]) * (a[y] - s @ a)
    expected = -expected / (2 * p_y)
    assert torch.allclose(grad, expected, atol=1e-6)
    assert (grad[:, 0].abs() > 1e-3).all() and (grad[:, 1].abs() > 1e-3).all()  # one component per member


def test_an_attack_on_the_ensemble_feeds_every_member_the_same_inputs() -> None:
    """White-box: each attack step runs every member once on the very same images (M passes per step)."""
    members = [Linear(A1), Linear(A2)]
    ensemble = Ensemble(members)
    x, y = _images(), torch.tensor([0, 1, 0])
    steps = 4
    PGD(steps=steps, include_fgsm=False, generator=torch.Generator().manual_seed(0)).perturb(ensemble, x, y, 20.0)
    first, second = members[0].seen, members[1].seen
    assert len(first) == len(second) == steps + 1  # a gradient per step, then the final candidate
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], first[-1])  # the attack did move the shared input
    assert ensemble.passes_per_step == 2


def test_an_empty_ensemble_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
