"""FAB-T: the exact projection onto a hyperplane within the box, the closed-form minimal perturbation of a linear
model, and agreement with the `autoattack` package's FAB-T on a digits CNN."""

from __future__ import annotations

import pytest
import torch

from adv_smooth.attacks.fab import FAB, project_onto_hyperplane
from adv_smooth.robustness.batch import robust_predictions
from adv_smooth.utils.errors import UserError


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_projection_without_the_box_is_the_closed_form(norm: str) -> None:
    g = torch.Generator().manual_seed(0)
    w, c = torch.randn(6, 20, generator=g), torch.randn(6, generator=g) * 0.01
    far = torch.full_like(w, 10.0)
    d = project_onto_hyperplane(w, c, -far, far, norm)
    if norm == "l2":
        expected = c[:, None] * w / (w * w).sum(dim=1, keepdim=True)
    else:
        expected = c[:, None] * w.sign() / w.abs().sum(dim=1, keepdim=True)
    torch.testing.assert_close(d, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_projection_inside_a_binding_box_reaches_the_plane_and_beats_random_feasible_points(norm: str) -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8, 12, generator=g)
    p = torch.rand(8, 12, generator=g)
    lo, hi = -p, 1 - p
    c = 0.5 * (w * torch.where(w > 0, hi, lo)).sum(dim=1)  # half way to the farthest reachable value: feasible
    d = project_onto_hyperplane(w, c, lo, hi, norm)
    assert ((d >= lo - 1e-6) & (d <= hi + 1e-6)).all()
    torch.testing.assert_close((w * d).sum(dim=1), c, rtol=1e-4, atol=1e-5)
    size = d.norm(dim=1) if norm == "l2" else d.abs().amax(dim=1)
    for _ in range(200):  # any other feasible point on the plane is at least as far
        other = lo + (hi - lo) * torch.rand(8, 12, generator=g)
        t = c / (w * other).sum(dim=1)  # scale it onto the plane; keep it where it stays in the box
        other = other * t[:, None]
        inside = ((other >= lo) & (other <= hi)).all(dim=1) & (t > 0)
        other_size = other.norm(dim=1) if norm == "l2" else other.abs().amax(dim=1)
        assert (size[inside] <= other_size[inside] + 1e-5).all()


def test_bad_options_are_refused_by_name() -> None:
    with pytest.raises(UserError, match="targets=0"):
        FAB(targets=0)
    with pytest.raises(UserError, match="eta=3"):
        FAB(eta=3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("norm", "budget", "ref_eps"), [("linf", {"eps_255": 16.0}, 16 / 255), ("l2", {"radius": 1.0}, 1.0)]
)
def test_fab_t_agrees_with_pyautoattack(digits, norm: str, budget: dict, ref_eps: float) -> None:
    """Robust accuracy within 0.5 points of AutoAttack's FAB-T (9 targets, 100 steps) at the same fixed budget
    (397 images: 0.5 points is 2 images; measured 1 apart in both norms)."""
    fab_pt = pytest.importorskip("pyautoattack.fab_pt")
    model, x, y = digits
    ref = fab_pt.FABAttack_PT(
        model, norm="Linf" if norm == "linf" else "L2", eps=ref_eps, seed=0, targeted=True, n_target_classes=9
    )
    ref.device = "cpu"
    with torch.no_grad():
        ref_acc = (model(ref.perturb(x, y)).argmax(1) == y).float().mean().item()
    ours = FAB(norm=norm, budget="fixed", **budget)
    acc = robust_predictions(model, x, y, ours, [None])["correct"][None].float().mean().item()
    assert abs(acc - ref_acc) <= 0.005, (acc, ref_acc)
