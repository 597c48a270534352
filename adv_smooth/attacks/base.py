"""The attack extension point, and the plumbing every attack shares.

An attack is a small object (MadryLab `robustness` style). Its public verb is

    x_adv = attack.perturb(model, x, y, snr_db)      # x in [0, 1], x_adv clamped to [0, 1]

A subclass only writes the part that differs: `_perturbation(problem, eps, prepared)` returns the
perturbation *before* clamping, in the attack space. The base class owns everything around it, so FGSM,
PGD and the noise test cannot drift apart:

* the threat model (`norm="linf"` or `"l2"`, see `threat.py`) and the budget (`budget="snr"`: per image
  from the SNR, L2 radius r(x, s) = ||x|| 10^(-s/20), L-inf eps = r / sqrt(D); `budget="fixed"`: the
  literature's scalar budgets, `eps_255`/255 in L-inf or `radius` in L2, in [0, 1] pixel units);
* the space (`space="pixel"`, or `space="normalized"`: the budget is computed on (x - mean) / std and
  the perturbation is added there, i.e. delta_pixel = delta_norm * std; this reproduces the LPN paper's
  "attack after normalization" column);
* the labels the loss is taken against (`labels="true"`, or `"predicted"`: the model's own argmax,
  Kurakin et al.'s cure for label leaking in adversarial training);
* BatchNorm (`bn_mode="eval"`: craft in eval mode and restore every module's previous mode, so crafting
  neither updates BN running statistics nor depends on the batch; `"keep"`: leave modes alone);
* clamping to the valid image range (`clip=False` drops it: the LPN paper's normalized-space column
  never clamped, so its adversarial inputs need not be images), and the input gradient.

Gradients: `input_gradient` uses `torch.autograd.grad(..., inputs=[x])`, so no `.grad` is ever written
into the model's parameters (an attack inside a training step must not pollute the optimizer's
gradients), and it enables grad itself, so it works under `torch.no_grad()`. It cannot work under
`torch.inference_mode()`: callers (e.g. a Lightning validation loop) must run attacks outside it
(`Trainer(inference_mode=False)`); we raise a clear error instead of failing deep inside autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from adv_smooth.attacks.budget import linf_eps, snr_radius
from adv_smooth.attacks.gradients import check_not_inference_mode, crafting_mode
from adv_smooth.attacks.space import Space
from adv_smooth.attacks.threat import DISPLAY, NORMS, ThreatModel, threat_model
from adv_smooth.utils.errors import UserError, require

BUDGETS = ("snr", "fixed")
#: The unit of `Attack.passes_per_image`: one forward pass of one image. An input gradient (forward, then the
#: backward through the activations, no weight gradients) counts as two; measured on the width-16 PreAct
#: ResNet-18 on CPU: 1.6-2.3 forward passes (a training step, weight gradients and update included: 3.2-3.8).
FORWARD_PASS = 1.0
GRADIENT_PASS = 2.0
#: One training image: forward, backward through activations and weights, and the update (measured 3.2-3.8
#: forward passes on the width-16 PreAct ResNet-18 on CPU; 3 is the usual estimate, and a low one keeps the
#: validation evaluation on the cheap side). A defense that trains on extra rows counts them at this cost.
TRAINING_PASS = 3.0
SPACES = ("pixel", "normalized")
LABELS = ("true", "predicted")
BN_MODES = ("eval", "keep")


def label_mode(value: object) -> object:
    """`labels` as given, except that a boolean true becomes "true": typed unquoted on the command line
    (`defense.labels=true`), YAML reads the word as a boolean."""
    return "true" if value is True else value


@dataclass
class Problem:
    """One batch to attack, already moved to the attack space."""

    f: Callable[[Tensor], Tensor]  # the model as a function of an attack-space input
    z: Tensor  # clean images in the attack space
    y: Tensor  # true labels (what "broken" means)
    labels: Tensor  # labels the attack loss is taken against (true or predicted)
    space: Space


@dataclass
class AttackResult:
    """What `Attack.craft` returns; `x_adv` is what `perturb` returns.

    `delta` is the perturbation before clamping, in the attack space, and `eps` the per-image budget
    in that space and the attack's norm: tests and diagnostics check the nominal SNR on `z + delta`
    (see `measured_snr_db`). A minimum-norm attack also fills `min_snr_db`: per image, the SNR of the
    smallest adversarial perturbation it found (+inf: misclassified clean; -inf: none found).
    """

    x_adv: Tensor
    delta: Tensor
    eps: Tensor
    z: Tensor  # clean images in the attack space (== x in pixel space)
    min_snr_db: Tensor | None = None
    # iterative attacks: bool (N,), still improving: at the pace of its last steps the attack would have broken the
    # image with as many steps again (`needs_more_steps`); None where the attack does not say
    improving: Tensor | None = None


# ------------------------------------------------------------------------------------------ the base class
class Attack:
    """Base class: threat model, budget, space, labels, BN handling and clamping; subclasses implement
    `_perturbation`.

    Args (keyword-only, shared by every attack):
        norm: "linf" or "l2": the ball the attack searches (see `threat.py`).
        budget: "snr" (per-image budget from the SNR passed to `perturb`) or "fixed" (`eps_255` in
            L-inf, `radius` in L2; the SNR argument is then ignored and may be None).
        eps_255: the fixed L-inf budget in 1/255 units (in the attack space).
        radius: the fixed L2 radius in [0, 1] pixel units (in the attack space).
        space: "pixel" or "normalized" (see the module docstring).
        clip: clamp adversarial inputs to the valid image range (default True).
        labels: "true" or "predicted" (craft against the model's own argmax predictions).
        bn_mode: "eval" (craft in eval mode, restore modes afterwards) or "keep".
        generator: a `torch.Generator` on the images' device for the random laws (None: global RNG).
        eot_samples: forward passes averaged per evaluation of the model (Expectation over Transformation, Athalye
            et al. 2018): the attack sees the mean logits of that many draws of a randomized model (dropout left
            on, random input transforms), whose gradient is the expectation's; 1 (default) for a deterministic one.
            The evaluation engine raises it for a model it finds random (`robustness/batch.py`).
    """

    name: str = "attack"
    uses_labels: bool = True  # False for attacks that ignore the model's loss (random noise)
    uses_gradients: bool = True  # False for score-based attacks (the honesty checks compare the two kinds)
    iterative: bool = False  # True for multi-step attacks (never weaker than a single step: a check)
    minimal_norm: bool = False  # True when `AttackResult.min_snr_db` is filled

    def __init__(
        self,
        *,
        norm: str = "linf",
        budget: str = "snr",
        eps_255: float | None = None,
        radius: float | None = None,
        space: str = "pixel",
        clip: bool = True,
        labels: str = "true",
        bn_mode: str = "eval",
        generator: torch.Generator | None = None,
        eot_samples: int = 1,
    ) -> None:
        require(norm in NORMS, "norm", norm, f"expected one of {list(NORMS)}")
        require(
            isinstance(eot_samples, int) and not isinstance(eot_samples, bool) and 1 <= eot_samples <= 10_000,
            "eot_samples",
            eot_samples,
            "an integer in [1, 10000] (forward passes averaged per evaluation)",
        )
        require(budget in BUDGETS, "budget", budget, f"expected one of {list(BUDGETS)}")
        require(space in SPACES, "space", space, f"expected one of {list(SPACES)}")
        labels = label_mode(labels)
        require(labels in LABELS, "labels", labels, f"expected one of {list(LABELS)}")
        require(bn_mode in BN_MODES, "bn_mode", bn_mode, f"expected one of {list(BN_MODES)}")
        if budget == "fixed" and norm == "linf":
            require(_nonnegative(eps_255), "eps_255", eps_255, "budget='fixed' with norm='linf' needs eps_255 >= 0")
        if budget == "fixed" and norm == "l2":
            require(_nonnegative(radius), "radius", radius, "budget='fixed' with norm='l2' needs an L2 radius >= 0")
        self.norm = norm
        self.budget = budget
        self.eps_255 = eps_255
        self.radius = radius
        self.space = space
        self.clip = bool(clip)
        self.labels = labels
        self.bn_mode = bn_mode
        self.generator = generator
        self.eot_samples = eot_samples

    @property
    def threat(self) -> ThreatModel:
        return threat_model(self.norm)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "generator")
        return f"{type(self).__name__}({opts})"

    def describe(self) -> str:
        """One short line for tables and warnings, e.g. `PGD L2 snr` (threat models named as the field does)."""
        return f"{type(self).__name__} {DISPLAY[self.norm]} {self.budget}"

    # -- public API -----------------------------------------------------------------------------------
    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, snr_db: float | None = None) -> Tensor:
        """Adversarial images for `x` (in [0, 1]) at `snr_db`, clamped to [0, 1], detached."""
        return self.craft(model, x, y, snr_db).x_adv

    def craft(self, model: nn.Module, x: Tensor, y: Tensor, snr_db: float | None = None) -> AttackResult:
        """Like `perturb`, but also return the unclamped perturbation and the budget."""
        return self.craft_levels(model, x, y, [snr_db])[0]

    def craft_levels(
        self, model: nn.Module, x: Tensor, y: Tensor, snr_levels: Sequence[float | None]
    ) -> list[AttackResult]:
        """Attack one batch at several SNR levels, sharing the work that does not depend on the budget.

        (FGSM's gradient at the clean image is the same at every level, so it is computed once; a
        minimum-norm attack runs once for all levels.)
        """
        check_not_inference_mode()
        if x.is_inference():  # a batch made under inference_mode can still be attacked outside it
            x, y = x.clone(), y.clone()
        with crafting_mode(model, self.bn_mode), torch.no_grad():
            space = Space.of(model, self.space, self.clip)
            z = space.from_pixel(x.detach())

            def f(z_in: Tensor) -> Tensor:
                if self.eot_samples == 1:
                    return model(space.to_pixel(z_in))
                pixels = space.to_pixel(z_in)  # EOT: the mean logits of `eot_samples` draws of a random model
                return torch.stack([model(pixels) for _ in range(self.eot_samples)]).mean(dim=0)

            labels = f(z).argmax(dim=1) if (self.uses_labels and self.labels == "predicted") else y
            problem = Problem(f=f, z=z, y=y, labels=labels, space=space)
            prepared = self._prepare(problem)
            results = []
            for level in snr_levels:
                eps = self._eps(z, level)
                delta = self._perturbation(problem, eps, prepared)
                delta, improving = delta if isinstance(delta, tuple) else (delta, None)
                x_adv = space.to_pixel(space.box(z + delta)).detach()
                min_snr_db = self._min_snr_db(problem, prepared)
                results.append(AttackResult(x_adv, delta, eps, z, min_snr_db=min_snr_db, improving=improving))
        return results

    def passes_per_image(self, levels: int) -> float:
        """What `craft_levels` at `levels` levels costs per image, in forward passes (`FORWARD_PASS`, an input
        gradient `GRADIENT_PASS`): how the validation-time evaluation is kept within its budget
        (`adv_smooth/robustness/budget_plan.py`). An upper bound where an attack stops early on the images
        already broken. Default: one input gradient per level; an attack that does more says so."""
        return self._labels_passes() + levels * GRADIENT_PASS

    def _labels_passes(self) -> float:
        """The forward pass that reads the model's own predictions (`labels="predicted"`)."""
        return FORWARD_PASS if self.uses_labels and self.labels == "predicted" else 0.0

    # -- for subclasses ---------------------------------------------------------------------------------
    def _prepare(self, problem: Problem) -> Any:
        """Work shared by every budget level of one batch (e.g. the clean gradient). Default: nothing."""
        return None

    def _perturbation(self, problem: Problem, eps: Tensor, prepared: Any) -> Tensor | tuple[Tensor, Tensor]:
        """The perturbation in the attack space, before clamping; `eps` is shaped (N, 1, ..., 1). An iterative
        attack may return (perturbation, improving): per image whether it was still closing in on the boundary at
        the end (`needs_more_steps`), which the honesty checks read."""
        raise NotImplementedError

    def _min_snr_db(self, problem: Problem, prepared: Any) -> Tensor | None:
        """Per-image minimal adversarial SNR (minimum-norm attacks only)."""
        return None

    def _eps(self, z: Tensor, snr_db: float | None) -> Tensor:
        """The per-image radius in this attack's norm and space, shaped (N, 1, ..., 1)."""
        if self.budget == "fixed":
            if self.norm == "linf":
                return linf_eps(self.eps_255, z)
            return torch.full_like(linf_eps(0.0, z), float(self.radius))
        if snr_db is None:
            raise UserError(f"{self.name}: budget='snr' needs an SNR level (got None)")
        return self.threat.radius_from_l2(snr_radius(z, snr_db), z[0].numel())

    def _draw(self, like: Tensor, law: str) -> Tensor:
        """U(0, 1) (`law="uniform"`) or N(0, 1) shaped like `like`, from the attack's generator."""
        sample = torch.rand if law == "uniform" else torch.randn
        return sample(like.shape, generator=self.generator, dtype=like.dtype, device=like.device)

    def _uniform(self, like: Tensor) -> Tensor:
        return self._draw(like, "uniform")

    def _normal(self, like: Tensor) -> Tensor:
        return self._draw(like, "normal")


def needs_more_steps(margin_before: Tensor, margin_at_end: Tensor, window: int) -> Tensor:
    """bool (N,): at the pace of the attack's last `window` steps, the image's smallest margin so far
    (logit_y - max_{j != y} logit_j, from `margin_before` to `margin_at_end`) would reach zero within as many steps
    again: robust only because the attack stopped just short. A loss that merely keeps creeping up on an image far
    from the boundary (L2 PGD's does) is not flagged; on the digits CNN a longer horizon (another full run) flagged
    16 % of L2 PGD-10's robust images at 20 dB where 100 steps broke 1 %."""
    pace = (margin_before - margin_at_end) / max(1, window)
    return (margin_at_end > 0) & (pace > 0) & (margin_at_end <= pace * window)


def _nonnegative(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
