"""The validation evaluation's budget (`adv_smooth/robustness/budget_plan.py`): pure numbers, no Lightning."""

from __future__ import annotations

import math

import pytest

from adv_smooth.attacks import FGSM, PGD, GaussianNoise
from adv_smooth.attacks.square import Square
from adv_smooth.robustness.budget_plan import (
    MIN_IMAGES,
    TRAINING_PASS,
    describe,
    evaluation_passes,
    plan_validation,
    probe,
)

PROBE = evaluation_passes({"fgsm": FGSM()}, [33.0])  # 6 forward passes per image
DEFAULT = {"fgsm": FGSM(), "pgd": PGD(), "pgd_l2": PGD(norm="l2")}


def epoch(train_images: int) -> float:
    return train_images * TRAINING_PASS


def test_a_large_dataset_is_probed_every_epoch_within_the_budget() -> None:
    """CIFAR-10 sized: 45,000 training images buy 2,250 probe images an epoch at 10 %."""
    plan = plan_validation(5000, PROBE, epoch(45_000), budget=0.1)
    assert (plan.every_n_epochs, plan.subset) == (1, 2250)
    assert plan.share == pytest.approx(0.1)


def test_a_small_dataset_gets_fewer_images_or_fewer_evaluations() -> None:
    """Digits sized (1,213 training, 135 validation images): the budget buys 60 images an epoch, fewer than
    MIN_IMAGES, so the plan evaluates every second epoch on 121 images; still within the budget."""
    plan = plan_validation(135, PROBE, epoch(1213), budget=0.1, max_epochs=8)
    assert plan.every_n_epochs == 2 and MIN_IMAGES <= plan.subset == 121 < 135
    assert plan.share <= 0.1
    big = plan_validation(5000, PROBE, epoch(45_000), budget=0.1)
    assert plan.subset < big.subset
    # the full default curve on the same small dataset: as rare as the run allows, on far fewer images
    full = plan_validation(135, evaluation_passes(DEFAULT, [50, 45, 40, 33]), epoch(1213), 0.1, max_epochs=8)
    assert full.every_n_epochs == 8 and 1 <= full.subset < MIN_IMAGES and full.share <= 0.1


def test_never_zero_images_when_asked_for() -> None:
    expensive = evaluation_passes({"square": Square(queries=5000)}, [33.0])
    for train in (1, 10, 1000):
        plan = plan_validation(50, expensive, epoch(train), budget=0.01, max_epochs=1)
        assert plan.subset == 1 and plan.every_n_epochs == 1
    assert plan_validation(50, expensive, epoch(10), budget=0.01, every_n_epochs=3).subset == 1
    assert plan_validation(7, PROBE, epoch(45_000)).subset == 7  # never more than the split
    assert plan_validation(0, PROBE, epoch(1000)).subset == 0  # an empty split: nothing to attack
    assert plan_validation(500, PROBE, epoch(1000), subset=0).subset == 0  # switched off


def test_explicit_settings_are_kept() -> None:
    both = plan_validation(5000, PROBE, epoch(1000), budget=0.1, subset=512, every_n_epochs=1)
    assert (both.subset, both.every_n_epochs, both.explicit) == (512, 1, ("val_subset", "val_every_n_epochs"))
    assert both.share == pytest.approx(512 * PROBE / epoch(1000))  # reported, over the budget
    images = plan_validation(5000, PROBE, epoch(1000), budget=0.1, subset=512)
    assert images.subset == 512 and images.every_n_epochs == math.ceil(512 / 50) and images.share <= 0.1
    every = plan_validation(5000, PROBE, epoch(1000), budget=0.1, every_n_epochs=5)
    assert (every.subset, every.every_n_epochs) == (250, 5)  # 50 images an epoch, five epochs' worth


def test_a_larger_budget_or_adversarial_training_buys_more() -> None:
    small = plan_validation(5000, PROBE, epoch(4000), budget=0.1)
    assert plan_validation(5000, PROBE, epoch(4000), budget=0.2).subset == 2 * small.subset
    adversarial = plan_validation(5000, PROBE, 4000 * (TRAINING_PASS + 1.0), budget=0.1)  # FGSM on half
    assert adversarial.subset > small.subset


def test_without_training_the_user_or_a_probe_decides() -> None:
    assert plan_validation(5000, PROBE, None).subset == MIN_IMAGES
    assert plan_validation(5000, PROBE, None, subset=300).subset == 300
    assert math.isnan(plan_validation(5000, PROBE, None).share)


def test_probe_is_the_cheapest_gradient_attack_at_the_strongest_level() -> None:
    assert probe(DEFAULT, [50, 45, 40, 33]) == (["fgsm"], [33])
    assert probe({"noise": GaussianNoise(), "pgd": PGD()}, [40, 20]) == (["pgd"], [20])  # noise: no gradient
    assert probe({"square": Square()}, [40]) == (["square"], [40])  # nothing uses gradients: the cheapest


def test_describe_says_what_runs_what_it_costs_and_who_chose() -> None:
    plan = plan_validation(135, PROBE, epoch(1213), budget=0.1, max_epochs=8)
    line = describe(plan, {"fgsm": FGSM()}, [20.0], 135, 0.1)
    assert "fgsm (FGSM Linf snr) at 20 dB on 121 of 135 images every 2 epochs" in line
    assert "standard error of its accuracy at most 4.5 points" in line  # 1 / (2 sqrt(121))
    assert "~10.0 % of training" in line and "eval.val_budget=0.1" in line and "\n" not in line
    forced = plan_validation(5000, PROBE, epoch(1000), budget=0.1, subset=512, every_n_epochs=1)
    line = describe(forced, {"fgsm": FGSM()}, [33.0], 5000, 0.1)
    assert "(over the budget)" in line and "eval.val_subset as set" in line
    off = plan_validation(500, PROBE, epoch(1000), subset=0)
    assert "off (eval.val_subset=0)" in describe(off, {"fgsm": FGSM()}, [33.0], 500, 0.1)
