"""FGSM adversarial training (Goodfellow et al. 2015; Kurakin et al. 2016), the report's section 3.1.

Each training batch has a `fraction` of its samples replaced by FGSM examples crafted on the fly
against the current model, and the cross-entropy weighs the two kinds separately:
loss = (clean_weight * sum_clean CE + adv_weight * sum_adv CE) / (clean_weight * n_clean + adv_weight * n_adv).
Kurakin et al. put lambda = 0.3 on the adversarial examples (`adv_weight=0.3, clean_weight=1`, the
default); the report's code put it on the clean half (`adv_weight=1, clean_weight=0.3`).

Decisions:

* The crafting is `adv_smooth.attacks.FGSM`, the same class the evaluation uses, so training and
  evaluation budgets and magnitude laws cannot drift apart.
* The first `round(fraction * n)` samples are replaced (Python's round, half to even): training
  batches are already shuffled by the loader, so a permutation would add nothing but a gather.
* Crafting runs with `bn_mode="eval"`: BatchNorm uses its running statistics and does not update
  them, so the adversarial forward pass leaves the model exactly as it was, and each example depends
  only on its own image, not on the rest of the batch. The crafting gradient is taken with respect to
  the inputs only, so no `.grad` lands in the parameters.
* `budget_mode="dataset_mean"` (the report's style) uses one eps for every image: the mean over the
  TRAINING images of the per-image SNR budget, calibrated once in `setup` (the report calibrated on
  the test set and says so is incorrect). `"per_image"` (the default) gives each image its own eps.
* Random magnitudes come from the global RNG, so a seeded run repeats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adv_smooth.attacks.base import LABELS, label_mode
from adv_smooth.attacks.budget import snr_eps
from adv_smooth.attacks.fgsm import FGSM, MAGNITUDES
from adv_smooth.defenses.base import Defense, TrainBatch
from adv_smooth.errors import require

BUDGET_MODES = ("per_image", "dataset_mean")


def mean_snr_eps(batches: Iterable[Any], snr_db: float) -> float:
    """Mean over all images of the per-image budget eps = ||x|| / (10^(snr/20) sqrt(D)), in [0, 1] units.

    `batches` yields `images` or `(images, labels, ...)`; uint8 images are read as value / 255 (how the
    data modules hand them to the model). Accumulated in float64 so a large training set sums exactly.
    """
    total, count = 0.0, 0
    for batch in batches:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = images.to(torch.float64)
        if images.dtype == torch.uint8:
            x = x / 255.0
        total += float(snr_eps(x, snr_db).sum())
        count += len(x)
    require(count > 0, "defense.budget_mode", "dataset_mean", "needs a non-empty training set to calibrate on")
    return total / count


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class AdversarialTraining(Defense):
    """Replace a fraction of every batch by FGSM examples; weigh clean and adversarial CE separately.

    The budget is `snr` dB per image, or a plain L-inf `eps_255` (in 1/255 units) when given, which
    then overrides `snr` and `budget_mode`.
    """

    fraction: float = 0.5
    snr: float = 33.0
    eps_255: float | None = None
    magnitude: str = "truncated_normal"
    labels: str = "true"
    adv_weight: float = 0.3
    clean_weight: float = 1.0
    budget_mode: str = "per_image"

    def __post_init__(self) -> None:
        require(
            _number(self.fraction) and 0 < self.fraction <= 1, "defense.fraction", self.fraction, "a fraction in (0, 1]"
        )
        require(_number(self.snr) and self.snr > 0, "defense.snr", self.snr, "an SNR in dB > 0")
        require(
            self.eps_255 is None or (_number(self.eps_255) and self.eps_255 > 0),
            "defense.eps_255",
            self.eps_255,
            "null (use the SNR budget) or an L-inf budget > 0 in 1/255 units",
        )
        require(self.magnitude in MAGNITUDES, "defense.magnitude", self.magnitude, f"one of {list(MAGNITUDES)}")
        self.labels = label_mode(self.labels)
        require(self.labels in LABELS, "defense.labels", self.labels, f"one of {list(LABELS)}")
        require(
            self.budget_mode in BUDGET_MODES, "defense.budget_mode", self.budget_mode, f"one of {list(BUDGET_MODES)}"
        )
        for key in ("adv_weight", "clean_weight"):
            value = getattr(self, key)
            require(_number(value) and value >= 0, f"defense.{key}", value, "a number >= 0")
        require(
            self.adv_weight > 0 or self.fraction < 1,
            "defense.adv_weight",
            self.adv_weight,
            "> 0 when fraction = 1 (every sample would weigh 0)",
        )
        require(
            self.adv_weight + self.clean_weight > 0,
            "defense.clean_weight",
            self.clean_weight,
            "> 0 when adv_weight = 0 (every sample would weigh 0)",
        )
        self.calibrated_eps: float | None = None  # dataset_mean: the global eps in [0, 1] units
        self._attack = self._build_attack()

    def _build_attack(self) -> FGSM:
        if self.eps_255 is not None:
            budget = {"budget": "linf", "eps_255": self.eps_255}
        elif self.budget_mode == "dataset_mean" and self.calibrated_eps is not None:
            budget = {"budget": "linf", "eps_255": self.calibrated_eps * 255.0}
        else:
            budget = {"budget": "snr"}
        return FGSM(magnitude=self.magnitude, labels=self.labels, bn_mode="eval", **budget)

    @property
    def attack(self) -> FGSM:
        """The FGSM object that crafts the training examples (for logging and tests)."""
        return self._attack

    def calibrate(self, train_batches: Iterable[Any]) -> float:
        """Fix the global eps of `budget_mode="dataset_mean"` from training batches; returns it."""
        self.calibrated_eps = mean_snr_eps(train_batches, self.snr)
        self._attack = self._build_attack()
        return self.calibrated_eps

    def setup(self, module: nn.Module, datamodule: Any) -> None:
        """Calibrate `dataset_mean` on `datamodule.train_dataloader()`: training images only, never test."""
        if self.budget_mode == "dataset_mean" and self.eps_255 is None:
            self.calibrate(datamodule.train_dataloader())

    def prepare_batch(self, model: nn.Module, batch: TrainBatch) -> TrainBatch:
        if self.budget_mode == "dataset_mean" and self.eps_255 is None and self.calibrated_eps is None:
            raise RuntimeError("budget_mode='dataset_mean' needs setup() (or calibrate()) before training")
        n = len(batch.targets)
        k = round(self.fraction * n)
        if k == 0:
            return batch
        x_adv = self._attack.perturb(model, batch.inputs[:k], batch.targets[:k], self.snr)
        adversarial = torch.arange(n, device=batch.inputs.device) < k
        factor = torch.where(adversarial, self.adv_weight, self.clean_weight).to(batch.weight.dtype)
        return batch.replace(
            inputs=torch.cat([x_adv.to(batch.inputs.dtype), batch.inputs[k:]]),
            clean_mask=batch.clean_mask & ~adversarial,
            clean_count=n - k if batch.clean_count == n else None,  # the first k replaced, the rest were clean
            weight=batch.weight * factor,
        )
