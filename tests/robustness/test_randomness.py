"""Randomness and EOT: a model whose logits differ between two identical passes is detected before the attacks,
which then average over draws (Expectation over Transformation, Athalye et al. 2018); the records and the honesty
report say so. On a randomized toy defense, plain PGD overstates robustness and EOT-PGD does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from adv_smooth.attacks.pgd import PGD
from adv_smooth.robustness.batch import batch_records, evaluate_batch, randomized
from adv_smooth.robustness.honesty import Traits, check_records
from adv_smooth.robustness.records import Records

pytestmark = pytest.mark.usefixtures("one_thread")
D, EPS = 16, 0.1


class RandomPhase(nn.Module):
    """Two classes, margin w . x + b plus a tiny ripple A sum sin(omega (x + u)) with a fresh random phase u each
    pass: the ripple barely moves the logits (|A| << 1) but dominates a single pass's gradient (A omega >> |w|),
    so one draw's gradient points anywhere, while the mean over draws (the ripple averages out) points along w."""

    def __init__(self, margin: float) -> None:
        super().__init__()
        self.w = torch.ones(D) * 0.5
        self.b = margin
        self.amplitude, self.omega = 0.02, 300.0

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(1)
        phase = torch.rand_like(flat) * 2 * math.pi
        ripple = self.amplitude * torch.sin(self.omega * flat + phase).sum(dim=1)
        m = flat @ self.w - self.b + ripple
        return torch.stack([m, -m], dim=1) / 2


def _setup() -> tuple[nn.Module, Tensor, Tensor]:
    torch.manual_seed(0)
    x = 0.4 + 0.2 * torch.rand(200, 1, 4, 4)
    w_dot_x = x.flatten(1) @ (torch.ones(D) * 0.5)
    # margin 0.6 of what the L-inf ball can remove (eps ||w||_1 = 0.8): every image breaks at the ball's edge
    model = RandomPhase(0.0)
    model.b = float(w_dot_x.mean()) - 0.6 * EPS * 0.5 * D
    keep = (x.flatten(1) @ model.w - model.b > 0.3 * EPS * 0.5 * D) & (x.flatten(1) @ model.w - model.b < 0.7)
    return model, x[keep], torch.zeros(int(keep.sum()), dtype=torch.long)


def _pgd() -> PGD:
    return PGD(
        steps=20, budget="fixed", eps_255=EPS * 255, include_fgsm=False, generator=torch.Generator().manual_seed(0)
    )


def test_a_random_model_is_detected_and_a_deterministic_one_is_not() -> None:
    model, x, _ = _setup()
    assert randomized(model(x), model(x)).float().mean() > 0.9
    net = nn.Sequential(nn.Flatten(), nn.Linear(D, 2))
    assert not randomized(net(x), net(x)).any()


def test_plain_pgd_overstates_a_randomized_defense_and_eot_pgd_does_not() -> None:
    model, x, y = _setup()
    assert len(y) > 50
    plain = evaluate_batch(model, x, y, {"pgd": _pgd()}, [30.0], eot_samples=1)
    eot = evaluate_batch(model, x, y, {"pgd": _pgd()}, [30.0], eot_samples=64)
    acc = {
        k: float((o["attacks"]["pgd"]["adv_correct"][0] == 1).float().mean())
        for k, o in (("plain", plain), ("eot", eot))
    }
    assert acc["eot"] < 0.1, "the expectation's gradient follows w: the ball's edge breaks the images"
    assert acc["plain"] > acc["eot"] + 0.5, f"single draws wander: robustness overstated ({acc})"
    assert (plain["eot_samples"], eot["eot_samples"]) == (1, 64)


def test_the_records_and_the_honesty_report_say_so(tmp_path) -> None:
    model, x, y = _setup()
    attacks = {"pgd": _pgd()}
    for samples, expected in ((16, "averaged 16 passes"), (1, "raise eval.eot_samples")):
        records = batch_records(evaluate_batch(model, x, y, attacks, [30.0], eot_samples=samples), y, attacks, [30.0])
        (w,) = [w for w in check_records(records, {"pgd": Traits.of(attacks["pgd"])}) if w["check"] == "randomized"]
        assert expected in w["message"] and f"on {records.randomized.sum()} of {len(y)} images" in w["message"]
        assert records.randomized.mean() > 0.9
        again = Records.load(records.save(tmp_path / f"r{samples}.npz"))
        assert again.eot_samples == samples and np.array_equal(again.randomized, records.randomized)
    assert attacks["pgd"].eot_samples == 1, "the attack's own setting is restored after the batch"


def test_a_deterministic_model_stays_quiet_and_uses_single_draws() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(D, 2))
    x = torch.rand(32, 1, 4, 4)
    y = net(x).argmax(1)
    attacks = {"pgd": _pgd()}
    out = evaluate_batch(net, x, y, attacks, [30.0])
    records = batch_records(out, y, attacks, [30.0])
    assert out["eot_samples"] == 1 and not records.randomized.any()
    assert not [w for w in check_records(records, {"pgd": Traits.of(attacks["pgd"])}) if w["check"] == "randomized"]
