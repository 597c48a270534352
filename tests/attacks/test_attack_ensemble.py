"""The strong evaluation end to end on digits: the minimal-SNR curve bounds the others, masking is caught."""

from __future__ import annotations

import pytest
import torch
from test_attack_square import Quantized

from adv_smooth.attacks import PGD
from adv_smooth.attacks.apgd import APGD
from adv_smooth.attacks.fmn import FMN
from adv_smooth.attacks.square import Square
from adv_smooth.robustness.batch import batch_records, evaluate_batch
from adv_smooth.robustness.honesty import Traits, check_records
from adv_smooth.robustness.records import Records

LEVELS = [30.0, 25.0, 20.0, 15.0]


def _records(model, x, y, attacks, levels) -> Records:
    return batch_records(evaluate_batch(model, x, y, attacks, levels), y, attacks, levels)


@pytest.mark.slow
def test_minimal_snr_curve_is_below_every_linf_curve_and_next_to_l2_apgd(digits) -> None:
    """One FMN pass gives the whole L2 curve: at or below the L-inf ones (the cube is inside the ball) and
    within a point of APGD-T in L2 at every level."""
    model, x, y = digits
    g = torch.Generator
    attacks = {
        "fmn_l2": FMN(norm="l2"),
        "apgd_l2": APGD(norm="l2", steps=100, loss="dlr", targets=3, generator=g().manual_seed(0)),
        "pgd_linf": PGD(generator=g().manual_seed(0)),
        "apgd_linf": APGD(steps=50, generator=g().manual_seed(0)),
    }
    rec = _records(model, x, y, attacks, LEVELS)
    minimal = rec.minimal_curve("fmn_l2", LEVELS)
    for level in LEVELS:
        for linf in ("pgd_linf", "apgd_linf"):
            assert minimal[level] <= rec.accuracy(linf)[level] + 1e-9, (level, linf)
        assert abs(minimal[level] - rec.accuracy("apgd_l2")[level]) <= 0.01, level
    assert minimal[15.0] < minimal[30.0] < rec.clean.mean()
    assert 10.0 < rec.median_min_snr("fmn_l2") < 30.0


def test_square_breaks_a_masked_model_and_the_check_fires(digits) -> None:
    model, x, y = digits
    masked = Quantized(model).eval()
    x, y = x[:64], y[:64]
    g = torch.Generator
    attacks = {
        "pgd": PGD(steps=10, generator=g().manual_seed(0)),
        "square": Square(queries=300, generator=g().manual_seed(0)),
    }
    rec = _records(masked, x, y, attacks, [17.0])
    assert rec.accuracy("square")[17.0] < rec.accuracy("pgd")[17.0] - 0.1
    checks = {w["check"] for w in check_records(rec, {k: Traits.of(a) for k, a in attacks.items()})}
    assert {"gradient_free_stronger", "zero_gradients"} <= checks
