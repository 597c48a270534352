"""The per-image evaluation: the cascade equals running every attack, and records reproduce every number."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adv_smooth.attacks import FGSM, PGD
from adv_smooth.attacks.apgd import APGD
from adv_smooth.robustness.batch import batch_records, evaluate_batch
from adv_smooth.robustness.curves import summarize
from adv_smooth.robustness.records import Records

LEVELS = [30.0, 25.0, 20.0]


def _deterministic() -> dict:
    """Attacks without random draws, so running one on a subset changes nothing for an image."""
    return {
        "fgsm": FGSM(),
        "pgd": PGD(steps=5, random_start=False, include_fgsm=False),
        "apgd_l2": APGD(norm="l2", steps=10, random_start=False),
        "pgd_fixed": PGD(budget="fixed", eps_255=8, random_start=False),
    }


def _records(out: dict, y: torch.Tensor, attacks: dict, cascade: bool) -> Records:
    return batch_records(out, y, attacks, LEVELS, cascade)


def test_cascade_gives_the_same_worst_case_as_running_every_attack(digits) -> None:
    model, x, y = digits
    attacks = _deterministic()
    full = _records(evaluate_batch(model, x, y, attacks, LEVELS, cascade=False), y, attacks, False)
    cascade_out = evaluate_batch(model, x, y, attacks, LEVELS, cascade=True)
    cascade = _records(cascade_out, y, attacks, True)
    assert full.worst() == cascade.worst()
    assert full.worst()[20.0] < full.clean.mean(), "the attacks do break images at 20 dB"
    later = cascade.attacks["apgd_l2"].adv_correct
    assert (later == -1).any(), "the cascade skipped images an earlier attack had broken"
    # per image: robust in the cascade <=> robust against every attack run on its own
    for i, level in enumerate(LEVELS):
        alone = full.clean.copy()
        for name in ("fgsm", "pgd", "apgd_l2"):
            alone &= full.attacks[name].adv_correct[i] == 1
        survived = [cascade.attacks[n].adv_correct[i] != 0 for n in ("fgsm", "pgd", "apgd_l2")]
        in_cascade = cascade.clean & np.all(survived, axis=0)
        assert np.array_equal(alone, in_cascade), level


def test_records_round_trip_and_recompute_the_summary(digits, tmp_path) -> None:
    model, x, y = digits
    attacks = {
        "fgsm": FGSM(),
        "pgd": PGD(steps=3, generator=torch.Generator().manual_seed(0)),
        "fixed": PGD(budget="fixed", norm="l2", radius=0.5, steps=3),
    }
    out = evaluate_batch(model, x, y, attacks, LEVELS, sanity_level=0.0)
    records = _records(out, y, attacks, False)
    records.sanity_level, records.sanity_correct = 0.0, {k: v.numpy() for k, v in out["sanity_correct"].items()}
    path = records.save(tmp_path / "per_image_test.npz")
    loaded = Records.load(path)
    assert loaded.attacks["fixed"].levels == [None] and loaded.attacks["fgsm"].levels == LEVELS
    assert np.array_equal(loaded.attacks["pgd"].adv_correct, records.attacks["pgd"].adv_correct)
    assert list(loaded.sanity_correct) == ["pgd"], "the iterative gradient attack with an SNR budget runs there"
    summary = summarize(loaded, attacks, LEVELS)
    assert summary["attacks"]["fgsm"]["acc"] == pytest.approx(_accuracies(model, x, y, attacks["fgsm"]))
    assert summary["attacks"]["fixed"]["acc"].keys() == {"fixed"}
    worst = summary["worst"]["acc"]
    assert set(worst) == {"snr30", "snr25", "snr20", "fixed"}
    assert all(worst[k] <= min(summary["attacks"][a]["acc"][k] for a in ("fgsm", "pgd")) for k in worst if k != "fixed")
    assert worst["fixed"] <= summary["attacks"]["fixed"]["acc"]["fixed"]
    assert (path.stat().st_mode & 0o777) != 0o600, "written like any other file"


def _accuracies(model, x, y, attack) -> dict[str, float]:
    """The same attack scored directly, batch by batch (FGSM is deterministic)."""
    from adv_smooth.robustness.batch import robust_predictions
    from adv_smooth.robustness.honesty import level_key

    out = robust_predictions(model, x, y, attack, LEVELS)
    return {level_key(lv): out["correct"][lv].float().mean().item() for lv in LEVELS}


def test_zero_gradients_are_flagged_per_image() -> None:
    """A model that ignores its input has an exactly zero input gradient everywhere."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.zero_()
    out = evaluate_batch(model, torch.rand(5, 1, 2, 2), torch.zeros(5, dtype=torch.long), {"fgsm": FGSM()}, [30.0])
    assert out["zero_grad"].all()
