"""The robustness callback's validation settings, checked at construction, and its plan, read off the trainer.

The planning itself is pure (`adv_smooth/robustness/budget_plan.py`); this module only checks what the user
asked for (before any data is loaded) and counts what the trainer will train and validate on: images per
epoch from the loaders (`limit_*_batches` and every process included) and the defense's extra passes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl

from adv_smooth.attacks.base import Attack
from adv_smooth.robustness.batch import weak_to_strong
from adv_smooth.robustness.budget_plan import (
    TRAINING_PASS,
    ValidationPlan,
    describe,
    evaluation_passes,
    plan_validation,
    probe,
)
from adv_smooth.robustness.progress import info_line
from adv_smooth.utils.errors import is_int, is_number, require

ALL = "all"


@dataclass(frozen=True)
class ValidationRequest:
    """What the user asked of the validation evaluation; None = from the budget (`budget_plan`)."""

    subset: int | None = None
    every_n_epochs: int | None = None
    attacks: tuple[str, ...] | None = None
    levels: tuple[float, ...] | None = None
    budget: float = 0.1


def _int(value: object, low: int) -> bool:
    return is_int(value) and value >= low


def _positive(value: object) -> bool:
    return is_number(value) and value > 0


def _listed(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0


def validation_request(
    attacks: Mapping[str, Attack],
    levels: Sequence[float],
    val_subset: Any = None,
    val_every_n_epochs: Any = None,
    val_attacks: Any = None,
    val_snr_levels: Any = None,
    val_budget: Any = 0.1,
) -> ValidationRequest:
    """Check the `val_*` settings (one-line `UserError`s naming the option) and resolve `all`."""
    require(
        val_subset is None or _int(val_subset, 0),
        "val_subset",
        val_subset,
        "null (from `val_budget`) or an integer >= 0",
    )
    require(
        val_every_n_epochs is None or _int(val_every_n_epochs, 1),
        "val_every_n_epochs",
        val_every_n_epochs,
        "null (from `val_budget`) or an integer >= 1",
    )
    require(
        _positive(val_budget),
        "val_budget",
        val_budget,
        "a share > 0 of the training passes (0.1 = 10 %); val_subset=0 switches the evaluation off",
    )
    names = None
    if val_attacks is not None:
        listed = _listed(val_attacks)
        names = list(attacks) if val_attacks == ALL else list(val_attacks) if listed else None
        require(
            names is not None and all(name in attacks for name in names),
            "val_attacks",
            list(val_attacks) if listed else val_attacks,
            f"null (the cheapest, a probe), {ALL}, or a list of labels of `attacks` ({', '.join(attacks)})",
        )
    chosen_levels = None
    if val_snr_levels is not None:
        listed = _listed(val_snr_levels)
        require(
            val_snr_levels == ALL or (listed and all(_positive(s) for s in val_snr_levels)),
            "val_snr_levels",
            list(val_snr_levels) if listed else val_snr_levels,
            f"null (the strongest of `snr_levels`), {ALL}, or a non-empty list of SNRs in dB, each > 0",
        )
        chosen_levels = tuple(levels) if val_snr_levels == ALL else tuple(float(s) for s in val_snr_levels)
    return ValidationRequest(
        val_subset, val_every_n_epochs, None if names is None else tuple(names), chosen_levels, float(val_budget)
    )


def _first(loaders: Any) -> Any:
    if isinstance(loaders, Mapping):
        loaders = list(loaders.values())
    if isinstance(loaders, Sequence):
        return loaders[0] if loaders else None
    return loaders


def loader_images(loaders: Any, batches: Any, world_size: int = 1) -> int | None:
    """Images one pass over the (first) loader serves, all processes together, `limit_*_batches` included."""
    loader = _first(loaders)
    dataset = getattr(loader, "dataset", None)
    try:
        n = len(dataset)
    except TypeError:
        return None
    batches = _first(batches)
    size = getattr(loader, "batch_size", None)
    if isinstance(batches, (int, float)) and math.isfinite(batches) and size:
        n = min(n, int(batches) * size * max(1, world_size))
    return n


def plan_for(
    trainer: pl.Trainer,
    pl_module: pl.LightningModule,
    attacks: Mapping[str, Attack],
    levels: Sequence[float],
    request: ValidationRequest,
) -> tuple[ValidationPlan, dict[str, Attack], list[float]]:
    """The plan for this trainer (see `budget_plan.plan_validation`), the validation attacks and levels; logs it."""
    names, chosen = probe(attacks, levels)
    val_attacks = {name: attacks[name] for name in (request.attacks or names)}
    val_levels = weak_to_strong(request.levels or chosen)
    val_images = loader_images(trainer.val_dataloaders, trainer.num_val_batches, trainer.world_size) or 0
    train_images = loader_images(trainer.train_dataloader, trainer.num_training_batches, trainer.world_size)
    defense = getattr(pl_module, "defense", None)
    extra = defense.extra_passes_per_image() if hasattr(defense, "extra_passes_per_image") else 0.0
    epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 1 else None
    plan = plan_validation(
        val_images,
        evaluation_passes(val_attacks, val_levels),
        None if train_images is None else train_images * (TRAINING_PASS + extra),
        request.budget,
        request.subset,
        request.every_n_epochs,
        epochs,
    )
    chosen_keys = tuple(k for k, v in (("val_attacks", request.attacks), ("val_snr_levels", request.levels)) if v)
    plan = dataclasses.replace(plan, explicit=plan.explicit + chosen_keys)
    info_line(describe(plan, val_attacks, val_levels, val_images, request.budget))  # not glued onto the bar
    return plan, val_attacks, val_levels
