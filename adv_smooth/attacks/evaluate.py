"""Robustness of one batch: per-image correctness, clean and at each SNR level.

These are the per-batch pieces; a caller (the Lightning evaluation callback) sums them over batches.
Correctness is returned per image, not as accuracies, because the cumulative robust accuracy needs the
same image across levels: an image is robust at level s only if it is classified correctly clean and at
every level from the weakest noise (highest SNR) down to s. A curve that is not monotone under that
definition cannot hide a non-monotone attack (the report's "accuracy rises with noise" row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from adv_smooth.attacks.base import Attack, crafting_mode
from adv_smooth.attacks.budget import measured_snr_db


def weak_to_strong(snr_levels: Sequence[float]) -> list[float]:
    """SNR levels from the weakest perturbation (highest SNR) to the strongest."""
    return sorted(snr_levels, reverse=True)


def cumulative_correct(correct_by_level: Sequence[Tensor]) -> list[Tensor]:
    """Running AND over levels ordered weak to strong (put the clean correctness first).

    `cumulative_correct([clean, c50, c45])` -> `[clean, clean & c50, clean & c50 & c45]`.
    """
    out: list[Tensor] = []
    running: Tensor | None = None
    for correct in correct_by_level:
        running = correct.bool() if running is None else running & correct.bool()
        out.append(running)
    return out


@torch.no_grad()
def _correct(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return model(x).argmax(dim=1) == y


def robust_predictions(
    model: nn.Module, x: Tensor, y: Tensor, attack: Attack, snr_levels: Sequence[float]
) -> dict[str, Any]:
    """Attack one batch at every level and score it in eval mode (the model's modes are restored).

    Returns a dict:
        "levels": the levels, weak to strong (highest SNR first);
        "clean": bool (N,), correct on the clean images;
        "correct": {level: bool (N,)}, correct on the attacked images;
        "cumulative": {level: bool (N,)}, correct clean and at every level from the weakest down to this one;
        "measured_snr_db": {level: float (N,)}, the SNR each image got after clamping (+inf if unchanged);
        "measured_snr_db_mean": {level: float}, mean of the finite values (nan if none).
    Must run outside `torch.inference_mode()` (the attack needs autograd).
    """
    levels = weak_to_strong(snr_levels)
    with crafting_mode(model, "eval"):
        clean = _correct(model, x, y)
        results = attack.craft_levels(model, x, y, levels)
        correct = {level: _correct(model, r.x_adv, y) for level, r in zip(levels, results)}
    cumulative = cumulative_correct([clean] + [correct[level] for level in levels])[1:]
    snr = {level: measured_snr_db(x, r.x_adv) for level, r in zip(levels, results)}
    return {
        "levels": levels,
        "clean": clean,
        "correct": correct,
        "cumulative": dict(zip(levels, cumulative)),
        "measured_snr_db": snr,
        "measured_snr_db_mean": {level: _finite_mean(s) for level, s in snr.items()},
    }


def _finite_mean(values: Tensor) -> float:
    finite = values[torch.isfinite(values)]
    return float(finite.mean()) if finite.numel() else float("nan")
