"""The defense extension point: an object with optional hooks the LightningModule calls.

Hooks, in the order one training step calls them:
  prepare_batch -> forward -> loss_terms -> (backward, optimizer step) -> after_optimizer_step
A defense overrides only the hooks it needs; the defaults do nothing, so `Defense()` is `vanilla`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class TrainBatch:
    """What one training step feeds the network.

    `clean_mask` marks samples that are unmodified training images (regularizers such as the
    smoothness loss use only those: the report's fix, section 4.2.2). `weight` is the per-sample
    weight of the cross-entropy: loss = sum(weight * ce) / sum(weight).

    `clean_count` is the number of clean samples when it is known on the host (None: unknown). A regularizer
    that selects the clean rows needs that count to size its index; reading it off the mask would make the
    host wait for the device every step, so defenses that know it pass it along.

    `passes` splits the rows into consecutive groups the network sees in separate forward passes, each
    normalized by its own BatchNorm batch statistics (the original code's adversarial training: the
    adversarial half, then the clean half); None is one pass over the whole batch. The outputs are
    concatenated back in row order, so the loss is computed once, the same way in both cases.
    """

    inputs: Tensor
    targets: Tensor
    clean_mask: Tensor
    weight: Tensor
    clean_count: int | None = None
    passes: tuple[int, ...] | None = None

    @classmethod
    def clean(cls, inputs: Tensor, targets: Tensor, clean_rows: int | None = None) -> TrainBatch:
        """A batch of training images; with `clean_rows`, only the last `clean_rows` are unmodified (the
        data module left them un-augmented, so the regularizers read only those)."""
        n = inputs.shape[0]
        if clean_rows is None:
            count, mask = n, torch.ones(n, dtype=torch.bool, device=inputs.device)
        else:
            if not 0 <= clean_rows <= n:
                raise ValueError(f"clean_rows={clean_rows} outside [0, {n}]")
            count, mask = clean_rows, torch.arange(n, device=inputs.device) >= n - clean_rows
        return cls(inputs, targets, mask, torch.ones(n, dtype=inputs.dtype, device=inputs.device), clean_count=count)

    def replace(self, **changes: Any) -> TrainBatch:
        """A copy with `changes`; a new `clean_mask` without its `clean_count` makes the count unknown."""
        if "clean_mask" in changes and "clean_count" not in changes:
            changes["clean_count"] = None
        return replace(self, **changes)

    def clean_total(self) -> int:
        """The number of clean samples: the known count, else read off the mask (one host sync)."""
        return self.clean_count if self.clean_count is not None else int(self.clean_mask.sum())


@dataclass
class Defense:
    """The empty defense (`vanilla`). Subclasses override the hooks they need."""

    needs_activations: bool = field(default=False, init=False)
    model_options: dict[str, Any] = field(default_factory=dict, init=False)

    @property
    def name(self) -> str:
        return type(self).__name__

    def setup(self, module: nn.Module, datamodule: Any) -> None:
        """One-time preparation before training (calibrate on *training* data only)."""

    def prepare_batch(self, model: nn.Module, batch: TrainBatch) -> TrainBatch:
        """Turn a clean batch into the training inputs (e.g. swap in adversarial examples)."""
        return batch

    def loss_terms(self, batch: TrainBatch, logits: Tensor, activations: list[Tensor] | None) -> dict[str, Tensor]:
        """Extra named loss terms, added to the cross-entropy and logged separately."""
        return {}

    def after_optimizer_step(self, model: nn.Module) -> None:
        """Act on the weights after each optimizer step (e.g. Parseval retraction)."""

    @property
    def trains_adversarially(self) -> bool:
        """Whether training sees adversarial examples. Such a network's robust accuracy peaks early and then falls
        while its clean accuracy rises (robust overfitting, Rice, Wong & Kolter 2020), so its checkpoint is chosen
        on the validation probe's robust accuracy (`callbacks.model_checkpoint.monitor: auto`)."""
        return False

    def extra_passes_per_image(self) -> float:
        """Passes through the network per training image beyond the step's own, in forward passes
        (`adv_smooth.attacks.base.FORWARD_PASS`), e.g. crafting adversarial examples: the validation-time
        robustness evaluation's budget is relative to the whole training cost (`robustness/budget_plan.py`)."""
        return 0.0


class Compose(Defense):
    """Several defenses applied together; hooks run in the given order and loss terms are merged."""

    def __init__(self, defenses: Iterable[Defense] = ()) -> None:
        super().__init__()
        self.defenses = list(defenses)
        self.needs_activations = any(d.needs_activations for d in self.defenses)
        for d in self.defenses:
            self.model_options.update(d.model_options)

    @property
    def name(self) -> str:
        return "+".join(d.name for d in self.defenses) or "vanilla"

    def setup(self, module: nn.Module, datamodule: Any) -> None:
        for d in self.defenses:
            d.setup(module, datamodule)

    def prepare_batch(self, model: nn.Module, batch: TrainBatch) -> TrainBatch:
        for d in self.defenses:
            batch = d.prepare_batch(model, batch)
        return batch

    @property
    def trains_adversarially(self) -> bool:
        return any(d.trains_adversarially for d in self.defenses)

    def extra_passes_per_image(self) -> float:
        return sum(d.extra_passes_per_image() for d in self.defenses)

    def loss_terms(self, batch: TrainBatch, logits: Tensor, activations: list[Tensor] | None) -> dict[str, Tensor]:
        terms: dict[str, Tensor] = {}
        for d in self.defenses:
            for key, value in d.loss_terms(batch, logits, activations).items():
                if key in terms:
                    raise ValueError(f"two defenses both produce the loss term {key!r}")
                terms[key] = value
        return terms

    def after_optimizer_step(self, model: nn.Module) -> None:
        for d in self.defenses:
            d.after_optimizer_step(model)
