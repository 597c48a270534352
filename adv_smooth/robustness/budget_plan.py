"""How many validation images the robustness callback attacks, with what, and how often: a budget relative to training.

Why a budget: attacking 512 validation images with every test-time attack at every level after every epoch
costs about 50 gradient passes per image, which on a dataset of a few thousand images is about twice the
epoch's training (issue 15: a 3.0x slower run than a plain loop doing the same training and final
evaluation). A user who runs the tool on their own data would pay that without asking for it.

So the validation-time evaluation is sized from a budget: at most `budget` (default 10 %) of the training
passes. Both sides are counted in forward passes of one image (`adv_smooth.attacks.base.FORWARD_PASS`), not
timed: an epoch trains each image once at `TRAINING_PASS` plus the defense's extra passes (adversarial
examples: `Defense.extra_passes_per_image`), and evaluating one image costs `evaluation_passes(attacks,
levels)`. A counted plan is the same on every machine and in every rerun (a resumed run attacks the same
images); the benchmark `benchmarks/run.py` measures what it costs in seconds.

By default the evaluation is a probe (`probe`): the preset's cheapest gradient attack at its strongest level
(FGSM at the lowest SNR of `eval.snr_levels` for `eval=default`), on as many validation images as the budget
allows every epoch, or, where that is fewer than `MIN_IMAGES`, every few epochs on more images
(`plan_validation`). The full curve is the test split's, which this module never touches. Anything the user
sets explicitly (the images, the frequency, the attacks, the levels) is kept, and `describe` says in one
line what the plan is and what it costs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adv_smooth.attacks.base import FORWARD_PASS, GRADIENT_PASS, TRAINING_PASS, Attack  # noqa: F401 (the plan's unit)
from adv_smooth.robustness.batch import attack_levels

#: Fewest images the default plan attacks per evaluation (where the split has them): with 100 images a robust
#: accuracy has a standard error of at most 5 points, enough to follow a trend between epochs.
MIN_IMAGES = 100
DEFAULT_BUDGET = 0.1


def evaluation_passes(attacks: Mapping[str, Attack], levels: Sequence[float]) -> float:
    """Forward passes per image of `evaluate_batch` with these attacks at these levels: the clean forward, the
    zero-gradient check (one input gradient), each attack's crafting and one scoring forward per level."""
    total = FORWARD_PASS + GRADIENT_PASS
    for attack in attacks.values():
        n = len(attack_levels(attack, levels))
        total += attack.passes_per_image(n) + n * FORWARD_PASS
    return total


def probe(attacks: Mapping[str, Attack], levels: Sequence[float]) -> tuple[list[str], list[float]]:
    """The default validation evaluation: the cheapest attack that follows the loss's gradient (not random noise,
    not a score-based search; the cheapest of all when none does; the first on ties) at the strongest level, the
    lowest SNR, where it moves the most."""
    pool = [n for n, a in attacks.items() if a.uses_gradients and a.uses_labels] or list(attacks)
    name = min(pool, key=lambda n: attacks[n].passes_per_image(1))
    return [name], [min(levels)]


@dataclass(frozen=True)
class ValidationPlan:
    """What the callback does at validation: `subset` images every `every_n_epochs` epochs.

    `share` is their estimated cost over the training passes between two evaluations (nan where the training
    size is unknown, e.g. `trainer.validate` alone); `explicit` names the settings the user chose.
    """

    subset: int
    every_n_epochs: int
    share: float
    explicit: tuple[str, ...] = ()


def plan_validation(
    val_images: int,
    image_passes: float,
    epoch_passes: float | None,
    budget: float = DEFAULT_BUDGET,
    subset: int | None = None,
    every_n_epochs: int | None = None,
    max_epochs: int | None = None,
    min_images: int = MIN_IMAGES,
) -> ValidationPlan:
    """Images per evaluation and epochs between evaluations within `budget` of the training passes.

    `epoch_passes`: one epoch's training in forward passes (None: unknown, no budget applies). `subset` /
    `every_n_epochs`: the user's settings (None: from the budget); `subset=0` switches the evaluation off. The
    plan never attacks zero images when the split has some and the evaluation is on; with both settings
    given the budget is only reported. Without them the frequency is the highest at which the budget buys
    `min_images` (capped at `max_epochs`: the last epoch is always evaluated), and the images as many as it buys
    at that frequency, at least one, at most the split.
    """
    explicit = tuple(k for k, v in (("val_subset", subset), ("val_every_n_epochs", every_n_epochs)) if v is not None)
    if subset == 0 or val_images <= 0:
        return ValidationPlan(0, every_n_epochs or 1, 0.0, explicit)
    cap = val_images if subset is None else min(subset, val_images)
    if epoch_passes is None or epoch_passes <= 0:  # nothing to be relative to: the user's settings, or a probe
        n = cap if subset is not None else min(cap, min_images)
        return ValidationPlan(n, every_n_epochs or 1, math.nan, explicit)
    allowed = budget * epoch_passes / image_passes  # images per epoch of training within the budget
    longest = max_epochs if max_epochs is not None and max_epochs >= 1 else None
    every = every_n_epochs
    if every is None:
        wanted = cap if subset is not None else min(cap, min_images)
        every = max(1, math.ceil(wanted / allowed - 1e-9))
        every = min(every, longest) if longest else every
    n = cap if subset is not None else max(1, min(cap, math.floor(every * allowed + 1e-9)))
    return ValidationPlan(n, every, n * image_passes / (every * epoch_passes), explicit)


def describe(
    plan: ValidationPlan, attacks: Mapping[str, Attack], levels: Sequence[float], val_images: int, budget: float
) -> str:
    """The plan in one log line: what is attacked, how often, its estimated cost, who chose it, and how noisy the
    probe's accuracy is (at most 1 / (2 sqrt(n)): the best-robust checkpoint is chosen on it, so a difference between
    epochs below it is noise; raise eval.val_subset or eval.val_budget to sharpen it)."""
    if plan.subset == 0:
        why = "eval.val_subset=0" if "val_subset" in plan.explicit else "the validation split is empty"
        return f"robustness on validation: off ({why}); the test split gets the full curve"
    what = ", ".join(f"{name} ({attack.describe()})" for name, attack in attacks.items())
    at = "/".join(f"{level:g}" for level in levels)
    every = "every epoch" if plan.every_n_epochs == 1 else f"every {plan.every_n_epochs} epochs and the last"
    cost = "cost unknown (no training)" if math.isnan(plan.share) else f"~{100 * plan.share:.1f} % of training"
    chosen = ", ".join(f"eval.{k} as set" for k in plan.explicit) or f"from the budget eval.val_budget={budget:g}"
    over = " (over the budget)" if plan.share > budget * (1 + 1e-9) else ""
    images = min(plan.subset, val_images) if val_images else plan.subset
    noise = f"standard error of its accuracy at most {50 / math.sqrt(images):.1f} points"  # sqrt(p(1-p)/n) <= 1/2
    return (
        f"robustness on validation: {what} at {at} dB on {plan.subset} of {val_images} images {every}, "
        f"{cost}{over}; {chosen}; {noise}; the test split gets the full curve"
    )
