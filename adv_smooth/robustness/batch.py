"""Robustness of one batch: per-image correctness, clean and at each SNR level.

These are the per-batch pieces; a caller (the Lightning evaluation callback) sums them over batches.
Correctness is returned per image, not as accuracies, because the cumulative robust accuracy needs the
same image across levels: an image is robust at level s only if it is classified correctly clean and at
every level from the weakest noise (highest SNR) down to s. A curve that is not monotone under that
definition cannot hide a non-monotone attack (the report's "accuracy rises with noise" row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from adv_smooth.attacks.base import Attack
from adv_smooth.attacks.budget import measured_snr_db
from adv_smooth.attacks.gradients import crafting_mode, loss_and_grad
from adv_smooth.robustness.records import AttackRecords, Records


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


def attack_levels(attack: Attack, snr_levels: Sequence[float]) -> list[float | None]:
    """The levels an attack is evaluated at: the SNR levels weak to strong, or one fixed budget (None)."""
    return [None] if attack.budget == "fixed" else weak_to_strong(snr_levels)


#: Logits of two identical passes differing by more than this (relative to 1 + their size) mean a random model;
#: below it, the last bits a GPU's nondeterministic kernels may change.
RANDOM_TOLERANCE = 1e-4


def randomized(first: Tensor, second: Tensor) -> Tensor:
    """bool (N,): two identical passes gave these different logits: a model with dropout left on, random input
    transforms or a smoothed classifier, which plain gradient attacks overstate (Athalye et al. 2018)."""
    scale = 1.0 + torch.maximum(first.abs(), second.abs()).amax(dim=1)
    return (first - second).abs().amax(dim=1) > RANDOM_TOLERANCE * scale


@contextmanager
def expectation_over(attacks: Mapping[str, Attack], samples: int, on: bool) -> Iterator[None]:
    """Within: every attack averages `samples` passes per evaluation of the model (EOT) when `on`, their own
    setting restored after."""
    before = {name: attack.eot_samples for name, attack in attacks.items()}
    if on:
        for attack in attacks.values():
            attack.eot_samples = max(attack.eot_samples, samples)
    try:
        yield
    finally:
        for name, attack in attacks.items():
            attack.eot_samples = before[name]


def evaluate_batch(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    attacks: Mapping[str, Attack],
    snr_levels: Sequence[float],
    cascade: bool = False,
    sanity_level: float | None = None,
    eot_samples: int = 20,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Per-image outcomes of every attack on one batch, on the device (no read-back).

    Independent mode attacks every image with every attack. With `cascade=True` (AutoAttack's), at each
    level (fixed-budget attacks share one) an attack runs only on the images correct clean that every
    earlier attack left robust, so
    the per-image "worst" verdict is the same as running them all, for less work; minimum-norm attacks
    always see every image (their minimal SNR is level-free). `sanity_level`: also run the first
    iterative gradient attack (an L2 one first) at that very low SNR, where accuracy should approach zero.
    Before the attacks two identical passes (the clean one and the zero-gradient check's) test whether the model is
    random (`randomized`); if it is, on any
    image of the batch, every attack averages `eot_samples` passes per evaluation (EOT) and "randomized" (bool
    (N,)) and "eot_samples" say so. `progress(name, levels, n, finished)` hears of each attack starting and
    finishing on the batch's `n` images at `levels` (each level on its own in a cascade; `robustness/progress.py`).

    Returns {"clean_pred": (N,), "zero_grad": bool (N,), "attacks": {name: {"adv_correct": int8 (L, N),
    "measured_snr_db": (L, N), "min_snr_db": (N,) | None, "improving": int8 (L, N) | None (1: still closing in
    on the boundary at the end, 0: not, -1: not said or not attacked)}}, "sanity_correct": {name: bool (N,)}},
    and "sanity_level" when that check ran.
    """
    with crafting_mode(model, "eval"):
        with torch.no_grad():
            logits = model(x)
        _, again, grad = loss_and_grad(model, x, y)  # the zero-gradient check's pass is the randomness check's too
        clean_pred, random = logits.argmax(dim=1), randomized(logits, again)
        zero_grad = grad.flatten(1).abs().amax(dim=1) == 0
        robust = {lv: clean_pred == y for lv in [*weak_to_strong(snr_levels), None]}  # None: fixed budgets
        out: dict[str, Any] = {"clean_pred": clean_pred, "zero_grad": zero_grad, "attacks": {}, "sanity_correct": {}}
        out["randomized"] = random
        eot = bool(random.any()) and eot_samples > 1
        out["eot_samples"] = eot_samples if eot else 1
        with expectation_over(attacks, eot_samples, eot):
            _attack_all(model, x, y, attacks, snr_levels, cascade, sanity_level, robust, out, progress or _silent)
    return out


#: `evaluate_batch`'s progress report: (attack label, levels, images, finished).
Progress = Callable[[str, Sequence[float | None], int, bool], Any]


def _silent(name: str, levels: Sequence[float | None], n: int, finished: bool) -> None:
    return None


def _attack_all(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    attacks: Mapping[str, Attack],
    snr_levels: Sequence[float],
    cascade: bool,
    sanity_level: float | None,
    robust: dict[float | None, Tensor],
    out: dict[str, Any],
    progress: Progress = _silent,
) -> None:
    """`evaluate_batch`'s attacks, filling `out` (see there)."""
    n = len(y)
    for name, attack in attacks.items():
        levels = attack_levels(attack, snr_levels)
        adv_correct = torch.full((len(levels), n), -1, dtype=torch.int8, device=x.device)
        measured = torch.full((len(levels), n), float("nan"), device=x.device)
        improving = torch.full((len(levels), n), -1, dtype=torch.int8, device=x.device)  # -1: not said
        min_snr = None
        subsets = cascade and not attack.minimal_norm
        if not subsets:
            progress(name, levels, n, False)
            results = attack.craft_levels(model, x, y, levels)
            for i, r in enumerate(results):
                adv_correct[i] = _correct(model, r.x_adv, y).to(torch.int8)
                measured[i] = measured_snr_db(x, r.x_adv)
                if r.improving is not None:
                    improving[i] = r.improving.to(torch.int8)
            min_snr = results[0].min_snr_db
            progress(name, levels, n, True)
        else:
            for i, lv in enumerate(levels):
                progress(name, [lv], n, False)
                todo = robust[lv].nonzero().squeeze(1)
                if todo.numel():
                    (r,) = attack.craft_levels(model, x[todo], y[todo], [lv])
                    adv_correct[i, todo] = _correct(model, r.x_adv, y[todo]).to(torch.int8)
                    measured[i, todo] = measured_snr_db(x[todo], r.x_adv)
                    if r.improving is not None:
                        improving[i, todo] = r.improving.to(torch.int8)
                progress(name, [lv], n, True)
        for i, lv in enumerate(levels):
            robust[lv] &= adv_correct[i] != 0
        out["attacks"][name] = {
            "adv_correct": adv_correct,
            "measured_snr_db": measured,
            "min_snr_db": min_snr,
            "improving": improving if attack.iterative and not attack.minimal_norm else None,
        }
    name = sanity_attack(attacks)
    if sanity_level is not None and name is not None:
        progress(SANITY, [], n, False)
        (r,) = attacks[name].craft_levels(model, x, y, [sanity_level])
        out["sanity_correct"][name] = _correct(model, r.x_adv, y)
        out["sanity_level"] = sanity_level
        progress(SANITY, [], n, True)


#: The progress label of the sanity check (`robustness/progress.py`: a step done once an image).
SANITY = "sanity"


def sanity_attack(attacks: Mapping[str, Attack]) -> str | None:
    """The attack the sanity check runs at its very low SNR: the first iterative gradient attack with an SNR budget
    (an L2 one first: the L2 ball holds the cube); None: no attack can."""
    sane = [
        n for n, a in attacks.items() if a.iterative and a.uses_gradients and a.budget == "snr" and not a.minimal_norm
    ]
    return sorted(sane, key=lambda n: attacks[n].norm != "l2")[0] if sane else None


def batch_records(
    out: Mapping[str, Any], y: Tensor, attacks: Mapping[str, Attack], snr_levels: Sequence[float], cascade: bool = False
) -> Records:
    """`evaluate_batch`'s output for one batch (the whole split, in a script) as host-side `Records`."""
    return records_of([{**out, "label": y, "index": torch.arange(len(y))}], attacks, snr_levels, cascade)


def records_of(
    batches: Sequence[Mapping[str, Any]], attacks: Mapping[str, Attack], snr_levels: Sequence[float], cascade: bool
) -> Records:
    """The host-side `Records` of `evaluate_batch` outputs, each with its "label" and "index" (the images' places
    in the split) and, when certified, "certified" added, concatenated in order: the one records builder (a
    script's single batch, an `Evaluator`'s split, a Lightning process's shard). Everything moves to the host
    once, here."""

    def cat(get) -> np.ndarray:
        return torch.cat([get(b) for b in batches], dim=-1).cpu().numpy()

    if not batches:
        empty = np.zeros(0, dtype=np.int64)
        return Records(empty, empty, empty, cascade=cascade)
    records = Records(
        index=cat(lambda b: b["index"]),
        label=cat(lambda b: b["label"]),
        clean_pred=cat(lambda b: b["clean_pred"]),
        zero_grad=cat(lambda b: b["zero_grad"]),
        cascade=cascade,
        randomized=cat(lambda b: b["randomized"]) if "randomized" in batches[0] else None,
        eot_samples=max(int(b.get("eot_samples", 1)) for b in batches),
    )
    for name, attack in attacks.items():
        has_min = batches[0]["attacks"][name]["min_snr_db"] is not None
        has_improving = batches[0]["attacks"][name].get("improving") is not None
        records.attacks[name] = AttackRecords(
            levels=attack_levels(attack, snr_levels),
            adv_correct=cat(lambda b, n=name: b["attacks"][n]["adv_correct"]),
            measured_snr_db=cat(lambda b, n=name: b["attacks"][n]["measured_snr_db"].float()),
            min_snr_db=cat(lambda b, n=name: b["attacks"][n]["min_snr_db"].float()) if has_min else None,
            improving=cat(lambda b, n=name: b["attacks"][n]["improving"]) if has_improving else None,
        )
    for name in batches[0]["sanity_correct"]:
        records.sanity_level = batches[0]["sanity_level"]
        records.sanity_correct[name] = cat(lambda b, n=name: b["sanity_correct"][n])
    for key in batches[0].get("certified", {}):  # host arrays already (`robustness/certify.py`)
        records.certified[key] = np.concatenate([b["certified"][key] for b in batches])
    return records
