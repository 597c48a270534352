"""`Attack.passes_per_image` against the passes an attack really makes, counted on the model itself.

Every forward of the network is counted with its batch rows: a forward that builds a graph is an input
gradient (`GRADIENT_PASS`, the attacks always differentiate it), one without is a plain `FORWARD_PASS`. The
estimate must be exact for the attacks that always run to the end and an upper bound for the ones that stop
early on images already broken; `evaluation_passes` must match `evaluate_batch` the same way.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adv_smooth.attacks import FGSM, PGD, GaussianNoise
from adv_smooth.attacks.apgd import APGD
from adv_smooth.attacks.base import FORWARD_PASS, GRADIENT_PASS
from adv_smooth.attacks.ddn import DDN
from adv_smooth.attacks.fmn import FMN
from adv_smooth.attacks.square import Square
from adv_smooth.robustness.batch import evaluate_batch
from adv_smooth.robustness.budget_plan import evaluation_passes


class Counted(nn.Module):
    """A tiny classifier counting its passes, in forward-pass units summed over rows."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 5))
        self.passes = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.passes += len(x) * (GRADIENT_PASS if torch.is_grad_enabled() else FORWARD_PASS)
        return self.net(x)


def _counted(run, n: int) -> float:
    model = Counted()
    run(model)
    return model.passes / n


X = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
Y = torch.arange(6) % 5
LEVELS = [40.0, 30.0, 20.0]

EXACT = {
    "fgsm": FGSM(),
    "fgsm_predicted": FGSM(labels="predicted"),
    "pgd": PGD(steps=3, restarts=2),
    "pgd_no_fgsm_l2": PGD(steps=4, include_fgsm=False, norm="l2"),
    "fmn": FMN(steps=5, targets=2),
    "ddn": DDN(steps=5),
    "noise": GaussianNoise(),
}
EARLY_STOPPING = {"apgd_t": APGD(steps=4, targets=2, restarts=2), "square": Square(queries=20)}


@pytest.mark.parametrize("name", list(EXACT))
def test_estimate_is_the_counted_cost(name: str) -> None:
    attack = EXACT[name]
    counted = _counted(lambda m: attack.craft_levels(m, X, Y, LEVELS), len(Y))
    assert attack.passes_per_image(len(LEVELS)) == pytest.approx(counted)


@pytest.mark.parametrize("name", list(EARLY_STOPPING))
def test_estimate_bounds_an_attack_that_stops_early(name: str) -> None:
    attack = EARLY_STOPPING[name]
    counted = _counted(lambda m: attack.craft_levels(m, X, Y, LEVELS), len(Y))
    assert 0 < counted <= attack.passes_per_image(len(LEVELS)) + 1e-9


def test_evaluation_passes_is_evaluate_batchs_cost() -> None:
    attacks = {"fgsm": FGSM(), "pgd": PGD(steps=3), "fixed": PGD(steps=2, budget="fixed", eps_255=8)}
    counted = _counted(lambda m: evaluate_batch(m, X, Y, attacks, LEVELS), len(Y))
    assert evaluation_passes(attacks, LEVELS) == pytest.approx(counted)
    one = evaluation_passes({"fgsm": FGSM()}, [20.0])
    assert one == FORWARD_PASS + GRADIENT_PASS + GRADIENT_PASS + FORWARD_PASS  # clean, zero-grad check, FGSM, score
    default = {"fgsm": FGSM(), "pgd": PGD(), "pgd_l2": PGD(norm="l2")}  # eval=default's attacks
    assert evaluation_passes(default, [50, 45, 40, 33]) > 30 * one  # its full curve: over 30x the probe
