"""`Evaluator`: the engine every evaluation runs (notebook, callback, scripts), on a tiny linear classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from adv_smooth.attacks import FGSM, PGD
from adv_smooth.robustness.batch import evaluate_batch, records_of
from adv_smooth.robustness.evaluator import TEST_STAGE, Evaluator
from adv_smooth.utils.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")

LEVELS = [40.0, 25.0, 15.0]
X = torch.rand(20, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
Y = torch.arange(20) % 5


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 5)).eval()


def _batches(size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(X[i : i + size], Y[i : i + size]) for i in range(0, len(Y), size)]


def _engine(seed: int = 0, **options) -> Evaluator:
    """FGSM and one short PGD step from a random start: where PGD ends depends on its random draw."""
    return Evaluator(
        {"fgsm": FGSM(), "pgd": PGD(steps=1, step_size=0.1, norm="l2", include_fgsm=False)},
        LEVELS,
        seed=seed,
        **options,
    )


def test_batches_concatenate_to_the_records_of_one_batch_for_a_deterministic_attack() -> None:
    model, attacks = _model(), {"fgsm": FGSM()}
    records = Evaluator(attacks, LEVELS).run(model, _batches())
    whole = records_of(
        [{**evaluate_batch(model, X, Y, attacks, LEVELS), "label": Y, "index": torch.arange(20)}],
        attacks,
        LEVELS,
        cascade=False,
    )
    np.testing.assert_array_equal(records.index, np.arange(20))
    np.testing.assert_array_equal(records.clean_pred, whole.clean_pred)
    np.testing.assert_array_equal(records.attacks["fgsm"].adv_correct, whole.attacks["fgsm"].adv_correct)
    assert records.attacks["fgsm"].levels == sorted(LEVELS, reverse=True)
    assert (records.attacks["fgsm"].adv_correct == 0).any()  # the attack breaks something: not a vacuous match


def test_an_evaluation_repeats_exactly_and_leaves_the_global_generator_alone() -> None:
    model = _model()
    state = torch.random.get_rng_state()
    first = _engine().run(model, _batches())
    assert torch.equal(torch.random.get_rng_state(), state)  # the random starts drew from the attacks' own streams
    again = _engine().run(model, _batches())
    other_seed = _engine(seed=1).run(model, _batches())
    other_stage = _engine().run(model, _batches(), stage=TEST_STAGE + 1)
    pgd = first.attacks["pgd"].measured_snr_db
    np.testing.assert_array_equal(again.attacks["pgd"].measured_snr_db, pgd)
    assert not np.array_equal(other_seed.attacks["pgd"].measured_snr_db, pgd)
    assert not np.array_equal(other_stage.attacks["pgd"].measured_snr_db, pgd)


def test_a_subset_draws_the_same_streams_as_the_whole() -> None:
    """A validation probe (one attack, one level) draws what that attack draws in the whole engine: its stream
    is numbered among all the engine's attacks (pgd is the second), not among the subset's."""
    model = _model()
    part = _engine().subset(["pgd"], [25.0]).run(model, _batches())
    assert list(part.attacks) == ["pgd"] and part.attacks["pgd"].levels == [25.0]
    whole_at_that_level = _engine().subset(["fgsm", "pgd"], [25.0]).run(model, _batches())
    pgd = whole_at_that_level.attacks["pgd"].measured_snr_db
    np.testing.assert_array_equal(part.attacks["pgd"].measured_snr_db, pgd)
    alone = Evaluator({"pgd": PGD(steps=1, step_size=0.1, norm="l2", include_fgsm=False)}, [25.0])
    assert not np.array_equal(alone.run(model, _batches()).attacks["pgd"].measured_snr_db, pgd)  # the first stream


def test_sanity_check_and_cascade_reach_the_records() -> None:
    records = _engine(cascade=True, sanity_snr_db=-10).run(_model(), _batches())
    assert records.cascade and records.sanity_level == -10.0
    assert list(records.sanity_correct) == ["pgd"] and records.sanity_correct["pgd"].shape == (20,)
    assert (records.attacks["pgd"].adv_correct == -1).any()  # the cascade skipped what FGSM had broken


def test_summary_is_the_split_block_of_results() -> None:
    engine = _engine()
    summary = engine.summarize(engine.run(_model(), _batches()))
    assert set(summary["attacks"]) == {"fgsm", "pgd"} and "worst" in summary and summary["n"] == 20


@pytest.mark.parametrize("attacks", [{}, {"cw": "carlini"}, None])
def test_attacks_must_be_built(attacks) -> None:
    with pytest.raises(UserError, match="attacks"):
        Evaluator(attacks, LEVELS)


def test_levels_are_checked() -> None:
    with pytest.raises(UserError, match="snr_levels"):
        Evaluator({"fgsm": FGSM()}, [])
