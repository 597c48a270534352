"""FGSM adversarial training (Goodfellow et al. 2015; Kurakin et al. 2016), the report's section 3.1.

Each training batch has a `fraction` of its samples replaced by FGSM examples crafted on the fly
against the current model, and the cross-entropy weighs the two kinds separately:
loss = (clean_weight * sum_clean CE + adv_weight * sum_adv CE) / (clean_weight * n_clean + adv_weight * n_adv).
Kurakin et al. put lambda = 0.3 on the adversarial examples (`adv_weight=0.3, clean_weight=1`, the
default); the report's code put it on the clean half (`adv_weight=1, clean_weight=0.3`).

Decisions:

* The crafting attack is any `adv_smooth.attacks.base.Attack` (`attack`, passed built; the entry points
  build it from the defense's `_target_` config), by default `FGSM`, the same class the evaluation uses, so
  training and evaluation budgets and magnitude laws cannot drift apart. The budget stays here (`snr`,
  `eps_255`, `budget_mode`): the defense sets it on a copy of the attack, whatever the attack's own config said.
* The first `round(fraction * n)` samples are replaced (Python's round, half to even): training
  batches are already shuffled by the loader, so a permutation would add nothing but a gather.
* Crafting runs with `bn_mode="eval"` by default: BatchNorm uses its running statistics and does not
  update them, so the adversarial forward pass leaves the model exactly as it was, and each example
  depends only on its own image, not on the rest of the batch. The crafting gradient is taken with
  respect to the inputs only, so no `.grad` lands in the parameters. The original code crafted in train
  mode (`bn_mode="keep"`: batch statistics of the adversarial half, one more running-statistics update).
* `separate_passes=True` (the original code): the adversarial and the clean rows go through the network
  in two forward passes (`TrainBatch.passes`), so each is normalized by its own BatchNorm batch
  statistics and both update the running ones; the smoothness loss then reads the clean pass. One pass
  over the mixed batch (the default) normalizes both kinds with the same statistics, as one training
  batch should be.
* `budget_mode="dataset_mean"` (the report's style) uses one eps for every image: the mean over the
  TRAINING images of the per-image SNR budget, calibrated once in `setup` (the report calibrated on
  the test set and says so is incorrect). `"per_image"` (the default) gives each image its own eps.
* Random magnitudes come from the global RNG, so a seeded run repeats.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adv_smooth.attacks.base import LABELS, Attack, label_mode
from adv_smooth.attacks.budget import snr_eps
from adv_smooth.attacks.fgsm import FGSM, MAGNITUDES
from adv_smooth.defenses.base import Defense, TrainBatch
from adv_smooth.utils.errors import is_number, require

BUDGET_MODES = ("per_image", "dataset_mean")


def mean_snr_eps(batches: Iterable[Any], snr_db: float, norm: str = "linf") -> float:
    """Mean over all images of the per-image budget eps = ||x|| / (10^(snr/20) sqrt(D)), in [0, 1] units.

    With `norm="l2"` the mean L2 radius ||x|| 10^(-snr/20) = eps sqrt(D) instead. `batches` yields `images`
    or `(images, labels, ...)`; uint8 images are read as value / 255 (how the data modules hand them to the
    model). Accumulated in float64 so a large training set sums exactly.
    """
    total, count = 0.0, 0
    for batch in batches:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = images.to(torch.float64)
        if images.dtype == torch.uint8:
            x = x / 255.0
        scale = math.sqrt(x[0].numel()) if norm == "l2" else 1.0
        total += float(snr_eps(x, snr_db).sum()) * scale
        count += len(x)
    require(count > 0, "budget_mode", "dataset_mean", "needs a non-empty training set to calibrate on")
    return total / count


def require_training_budget(snr: object, eps_255: object) -> None:
    """The training adversaries' budget: an SNR in dB, or a fixed L-inf `eps_255` that overrides it."""
    require(is_number(snr) and snr > 0, "snr", snr, "an SNR in dB > 0")
    require(
        eps_255 is None or (is_number(eps_255) and eps_255 > 0),
        "eps_255",
        eps_255,
        "null (use the SNR budget) or an L-inf budget > 0 in 1/255 units",
    )


@dataclass
class AdversarialTraining(Defense):
    """Replace a fraction of every batch by adversarial examples; weigh clean and adversarial CE separately.

    The budget is `snr` dB per image, or a plain L-inf `eps_255` (in 1/255 units) when given, which
    then overrides `snr` and `budget_mode`. `attack` crafts the examples: a built `Attack`, or None: FGSM with
    `magnitude` and `labels`, crafted in eval mode. A given attack brings its own magnitude, labels and bn_mode
    (the YAML feeds it the same keys).
    After construction `attack` is the crafting attack with this defense's budget set on it.

    Args:
        fraction: the share of each training batch replaced by adversarial examples.
        snr: the crafting budget in dB of signal-to-noise ratio per image (lower: stronger).
        eps_255: a fixed L-inf budget in 1/255 units instead of `snr` (null: use `snr`).
        magnitude: FGSM's per-pixel step law: sign | truncated_normal | uniform | clipped_normal.
        labels: craft against the true labels or the model's predicted ones: true | predicted.
        adv_weight: the loss weight of an adversarial example.
        clean_weight: the loss weight of a clean example.
        budget_mode: per_image (each image its own SNR budget) | dataset_mean (one budget, the training mean).
        separate_passes: send the adversarial and the clean rows through the network in separate passes.
        attack: the crafting attack (null: FGSM with `magnitude` and `labels`).
    """

    fraction: float = 0.5
    snr: float = 33.0
    eps_255: float | None = None
    magnitude: str = "truncated_normal"
    labels: str = "true"
    adv_weight: float = 0.3
    clean_weight: float = 1.0
    budget_mode: str = "per_image"
    separate_passes: bool = False
    attack: Attack | None = None

    @property
    def trains_adversarially(self) -> bool:
        return True

    def __post_init__(self) -> None:
        require(
            is_number(self.fraction) and 0 < self.fraction <= 1,
            "fraction",
            self.fraction,
            "a fraction in (0, 1]",
        )
        require_training_budget(self.snr, self.eps_255)
        require(self.magnitude in MAGNITUDES, "magnitude", self.magnitude, f"one of {list(MAGNITUDES)}")
        self.labels = label_mode(self.labels)
        require(self.labels in LABELS, "labels", self.labels, f"one of {list(LABELS)}")
        require(self.budget_mode in BUDGET_MODES, "budget_mode", self.budget_mode, f"one of {list(BUDGET_MODES)}")
        for key in ("adv_weight", "clean_weight"):
            value = getattr(self, key)
            require(is_number(value) and value >= 0, key, value, "a number >= 0")
        require(
            self.adv_weight > 0 or self.fraction < 1,
            "adv_weight",
            self.adv_weight,
            "> 0 when fraction = 1 (every sample would weigh 0)",
        )
        require(
            self.adv_weight + self.clean_weight > 0,
            "clean_weight",
            self.clean_weight,
            "> 0 when adv_weight = 0 (every sample would weigh 0)",
        )
        require(isinstance(self.separate_passes, bool), "separate_passes", self.separate_passes, "true or false")
        require(
            self.attack is None or isinstance(self.attack, Attack),
            "attack",
            self.attack,
            "null (FGSM) or an attack (an adv_smooth.attacks.base.Attack)",
        )
        self._template = self.attack or FGSM(magnitude=self.magnitude, labels=self.labels, bn_mode="eval")
        require(
            self.eps_255 is None or self._template.norm == "linf",
            "eps_255",
            self.eps_255,
            f"null with an {self._template.norm} attack (eps_255 is an L-inf budget)",
        )
        self.calibrated_eps: float | None = None  # dataset_mean: the global budget in [0, 1] units, attack's norm
        self.attack = self._build_attack()

    def _build_attack(self) -> Attack:
        """A copy of the crafting attack with this defense's budget (the attack's own budget is ignored)."""
        if self.eps_255 is not None:
            budget = {"budget": "fixed", "eps_255": self.eps_255}
        elif self.budget_mode == "dataset_mean" and self.calibrated_eps is not None:
            key, value = (
                ("radius", self.calibrated_eps)
                if self._template.norm == "l2"
                else ("eps_255", self.calibrated_eps * 255.0)
            )
            budget = {"budget": "fixed", key: value}
        else:
            budget = {"budget": "snr"}
        attack = copy.copy(self._template)
        for key, value in budget.items():
            setattr(attack, key, value)
        return attack

    def calibrate(self, train_batches: Iterable[Any]) -> float:
        """Fix the global budget of `budget_mode="dataset_mean"` from training batches; returns it."""
        self.calibrated_eps = mean_snr_eps(train_batches, self.snr, self._template.norm)
        self.attack = self._build_attack()
        return self.calibrated_eps

    def setup(self, module: nn.Module, datamodule: Any) -> None:
        """Calibrate `dataset_mean` on `datamodule.train_dataloader()`: training images only, never test."""
        if self.budget_mode == "dataset_mean" and self.eps_255 is None:
            self.calibrate(datamodule.train_dataloader())

    def extra_passes_per_image(self) -> float:
        """Crafting `fraction` of each batch at one level (the adversarial rows' training pass is the step's)."""
        return self.fraction * self.attack.passes_per_image(1)

    def prepare_batch(self, model: nn.Module, batch: TrainBatch) -> TrainBatch:
        if self.budget_mode == "dataset_mean" and self.eps_255 is None and self.calibrated_eps is None:
            raise RuntimeError("budget_mode='dataset_mean' needs setup() (or calibrate()) before training")
        n = len(batch.targets)
        k = round(self.fraction * n)
        if k == 0:
            return batch
        x_adv = self.attack.perturb(model, batch.inputs[:k], batch.targets[:k], self.snr)
        adversarial = torch.arange(n, device=batch.inputs.device) < k
        factor = torch.where(adversarial, self.adv_weight, self.clean_weight).to(batch.weight.dtype)
        return batch.replace(
            inputs=torch.cat([x_adv.to(batch.inputs.dtype), batch.inputs[k:]]),
            clean_mask=batch.clean_mask & ~adversarial,
            clean_count=n - k if batch.clean_count == n else None,  # the first k replaced, the rest were clean
            weight=batch.weight * factor,
            passes=(k, n - k) if self.separate_passes and k < n else batch.passes,
        )
