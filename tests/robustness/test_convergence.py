"""Attack convergence: iterative attacks record per image whether they were still closing in on the boundary at
their end (at their last pace they would break it within a few more steps), and the honesty checks warn when that
holds for more than a tenth of the images they left robust (the attack needed more steps). A planted case (a step
too small to reach the ball's edge, where the image breaks) fires; a sound one (the attack at the edge of a ball
that cannot break the image) stays quiet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from adv_smooth.attacks.apgd import APGD
from adv_smooth.attacks.pgd import PGD
from adv_smooth.robustness.batch import batch_records, evaluate_batch
from adv_smooth.robustness.honesty import Traits, check_records
from adv_smooth.robustness.records import Records

pytestmark = pytest.mark.usefixtures("one_thread")


EPS = 0.02  # the fixed L-inf budget
FIXED = {"budget": "fixed", "eps_255": EPS * 255}


def _linear(margin_in_budgets: float) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Two classes, 64 interior images, each with the margin `margin_in_budgets` times what the whole L-inf ball can
    remove (eps ||w_0 - w_1||_1): below 1 the ball's edge breaks it, above 1 nothing can."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(20, 2))
    x = 0.3 + 0.4 * torch.rand(64, 1, 4, 5, generator=torch.Generator().manual_seed(1))
    w = model[1].weight[0] - model[1].weight[1]
    with torch.no_grad():
        model[1].bias.zero_()
        natural = x.flatten(1) @ w  # each image's margin without a bias: move it to the wanted one with a shift
        x = x + ((margin_in_budgets * EPS * w.abs().sum() - natural) / (w @ w))[:, None, None, None] * w.view(
            1, 1, 4, 5
        )
    assert ((x > 0) & (x < 1)).all()
    return model.eval(), x, torch.zeros(64, dtype=torch.long)


def _warnings(model, x, y, attacks) -> tuple[Records, list[dict]]:
    out = evaluate_batch(model, x, y, attacks, [30.0])  # the fixed budget ignores the level
    records = batch_records(out, y, attacks, [30.0])
    return records, [w for w in check_records(records, {n: Traits.of(a) for n, a in attacks.items()})]


def test_a_pgd_stopped_half_way_to_the_boundary_is_flagged_with_counts() -> None:
    model, x, y = _linear(0.55)  # the edge breaks every image; half the ball leaves it just short
    attacks = {"pgd": PGD(steps=10, step_size=0.5, random_start=False, include_fgsm=False, **FIXED)}  # half the ball
    records, warnings = _warnings(model, x, y, attacks)
    assert records.attacks["pgd"].improving is not None and (records.attacks["pgd"].improving == 1).all()
    (w,) = [w for w in warnings if w["check"] == "not_converged"]
    assert w["attack"] == "pgd" and "on 64 of the 64 images it left robust" in w["message"] and "steps" in w["message"]


@pytest.mark.parametrize(
    "attack",
    [
        PGD(steps=10, random_start=False, include_fgsm=False, budget="fixed", eps_255=EPS * 255),  # edge in 4 steps
        APGD(steps=20, random_start=False, budget="fixed", eps_255=EPS * 255),
    ],
    ids=["pgd", "apgd"],
)
def test_an_attack_that_reached_the_edge_is_quiet(attack) -> None:
    model, x, y = _linear(1.5)  # robust at the edge: a converged attack stops there
    records, warnings = _warnings(model, x, y, {"a": attack})
    assert not [w for w in warnings if w["check"] == "not_converged"], warnings
    assert (records.attacks["a"].improving == 0).mean() > 0.9


def test_the_flags_travel_in_the_per_image_file(tmp_path) -> None:
    model, x, y = _linear(0.55)
    records, _ = _warnings(model, x, y, {"pgd": PGD(steps=4, step_size=0.5, include_fgsm=False, **FIXED)})
    again = Records.load(records.save(tmp_path / "r.npz"))
    np.testing.assert_array_equal(again.attacks["pgd"].improving, records.attacks["pgd"].improving)
