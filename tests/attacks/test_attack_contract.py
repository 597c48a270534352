"""The contract every attack keeps, checked on every `Attack` subclass found in adv_smooth/attacks/ (discovered,
not listed: an attack added there is held to it without editing this file), in each norm it accepts.

* the budget: every crafted image's measured SNR is at least the level, and an attack that searches the ball (it
  follows the model's loss) stays in it, in its own norm (random noise is drawn at the budget's L2 energy, by
  design outside the L-inf cube: attacks/noise.py);
* the optimum where one is known: on a linear classifier the worst case in a ball has a closed form (the step
  along the weight difference, its sign in L-inf), which a gradient attack must reach, and the minimal
  adversarial perturbation too, which a minimum-norm attack must find;
* the cost: `passes_per_image` equals the passes a counting model sees when no image can be broken (nothing
  stops early), and bounds them when images break;
* the traits the honesty checks and the budget plan read (`uses_gradients`, `iterative`, `minimal_norm`,
  `uses_labels`) say what the attack does.
"""

from __future__ import annotations

import importlib
import math
import pkgutil

import pytest
import torch
from torch import Tensor, nn

import adv_smooth.attacks as attacks_package
from adv_smooth.attacks import measured_snr_db
from adv_smooth.attacks.base import FORWARD_PASS, GRADIENT_PASS, Attack
from adv_smooth.utils.errors import UserError

LEVELS = [40.0, 25.0]
DUAL = {"l2": 2, "linf": 1}  # the dual norm of each threat model's ball


def attack_classes() -> list[type[Attack]]:
    """Every concrete `Attack` subclass defined in a module of adv_smooth/attacks/."""
    found = []
    for info in pkgutil.iter_modules(attacks_package.__path__):
        module = importlib.import_module(f"{attacks_package.__name__}.{info.name}")
        for obj in vars(module).values():
            concrete = isinstance(obj, type) and issubclass(obj, Attack) and obj is not Attack
            if concrete and obj.__module__ == module.__name__ and not obj.__name__.startswith("_"):
                found.append(obj)
    return sorted(found, key=lambda cls: cls.__name__)


EXPENSIVE = 500.0  # passes an image at one level above which a case is marked slow (Square's 1,000 queries)


def _cases() -> list:
    """(class, norm) for every norm the class accepts with its defaults."""
    cases = []
    for cls in attack_classes():
        for norm in ("linf", "l2"):
            try:
                attack = cls(norm=norm)
            except UserError:
                continue  # e.g. DDN is an L2 attack
            marks = [pytest.mark.slow] if attack.passes_per_image(1) > EXPENSIVE else []
            cases.append(pytest.param(cls, norm, id=f"{cls.__name__}-{norm}", marks=marks))
    return cases


CASES = _cases()


def _attack(cls: type[Attack], norm: str, seed: int = 0) -> Attack:
    return cls(norm=norm, generator=torch.Generator().manual_seed(seed))


class Counted(nn.Module):
    """A linear classifier on 3x4x4 images counting its forward and backward calls, each summed over rows; in
    forward-pass units a forward is `FORWARD_PASS` and a forward with its backward an input gradient
    (`GRADIENT_PASS`)."""

    def __init__(self, classes: int, scale: float = 1.0, margin: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(48, classes)
        with torch.no_grad():
            self.linear.weight.mul_(scale)
            # boundaries through the box centre, plus `margin` in favour of class 0
            self.linear.bias.copy_(-self.linear.weight.sum(dim=1) * 0.5 + 0.05 * torch.randn(classes))
            self.linear.bias[0] += margin
        self.forwards = self.backwards = 0

    def forward(self, x: Tensor) -> Tensor:
        out = self.linear(x.flatten(1))
        self.forwards += len(x)
        if out.requires_grad:  # counted when a backward pass reaches the output
            out.register_hook(lambda grad: self._backward(len(grad)))
        return out

    def _backward(self, rows: int) -> None:
        self.backwards += rows

    @property
    def passes(self) -> float:
        return self.forwards * FORWARD_PASS + self.backwards * (GRADIENT_PASS - FORWARD_PASS)


def _images(n: int = 6) -> Tensor:
    """Images in [0.4, 0.6]: the budgets at LEVELS never reach the box, so nothing is clamped."""
    return 0.4 + 0.2 * torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(1))


def _binary() -> tuple[Counted, Tensor, Tensor]:
    model = Counted(classes=2)
    x = _images(16)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    model.forwards = model.backwards = 0
    return model, x, y


def test_every_attack_is_found() -> None:
    names = {cls.__name__ for cls in attack_classes()}
    assert {"FGSM", "PGD", "APGD", "Square", "FMN", "DDN", "GaussianNoise"} <= names
    assert all(any(p.values[0] is cls for p in CASES) for cls in attack_classes()), "every attack takes a norm"


@pytest.mark.parametrize(("cls", "norm"), CASES)
def test_the_budget_is_respected(cls: type[Attack], norm: str) -> None:
    model, x, y = _binary()
    attack = _attack(cls, norm)
    for level, result in zip(LEVELS, attack.craft_levels(model, x, y, LEVELS)):
        assert (measured_snr_db(x, result.x_adv) >= level - 1e-3).all(), level
        if attack.uses_labels:
            size = attack.threat.norm(result.x_adv - x)
            assert (size <= result.eps.flatten() * (1 + 1e-4) + 1e-6).all(), (level, size, result.eps.flatten())
        assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1


def _optimal_margin(model: Counted, x: Tensor, y: Tensor, eps: Tensor, norm: str) -> Tensor:
    """The smallest margin logit_y - logit_other a binary linear classifier can be pushed to in the ball."""
    w = model.linear.weight
    direction = w[y] - w[1 - y]  # (N, D)
    with torch.no_grad():
        logits = model.linear(x.flatten(1))
    margin = logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, (1 - y)[:, None]).squeeze(1)
    return margin - eps.flatten() * direction.norm(p=DUAL[norm], dim=1)


def _margin(model: Counted, x: Tensor, y: Tensor) -> Tensor:
    with torch.no_grad():
        logits = model.linear(x.flatten(1))
    return logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, (1 - y)[:, None]).squeeze(1)


@pytest.mark.parametrize(("cls", "norm"), CASES)
def test_the_linear_optimum_is_reached_where_one_is_known(cls: type[Attack], norm: str) -> None:
    """A gradient attack (not minimum-norm) reaches the worst case in the ball: it breaks every image the optimum
    breaks (it may stop there) and pushes the others to the optimal margin; a minimum-norm attack finds the
    closest boundary point (its minimal SNR is the closed form's). A score-based search or random noise has no
    such guarantee: for them the optimum only bounds what they reach."""
    model, x, y = _binary()
    attack = _attack(cls, norm)
    results = attack.craft_levels(model, x, y, LEVELS)
    for result in results:
        optimum = _optimal_margin(model, x, y, result.eps, norm)
        reached = _margin(model, result.x_adv, y)
        assert (reached >= optimum - 1e-4).all(), "no attack can beat the closed form"
        if attack.uses_gradients and not attack.minimal_norm:
            breaks = optimum < 0
            assert (reached[breaks] < 0).all(), "an image the optimum breaks is broken"
            clean = _margin(model, x, y)
            gap = (reached - optimum) / (clean - optimum)  # 0: the optimum, 1: no progress at all
            assert gap[~breaks].max() < 0.01, gap
    if attack.minimal_norm:
        w = model.linear.weight
        distance = _margin(model, x, y) / (w[y] - w[1 - y]).norm(p=DUAL[norm], dim=1)
        size = distance if norm == "l2" else distance * math.sqrt(x[0].numel())  # as an L2 size (the SNR's)
        closed_snr = 20 * torch.log10(x.flatten(1).norm(dim=1) / size)
        assert (results[0].min_snr_db - closed_snr).abs().max() < 0.2, (results[0].min_snr_db, closed_snr)


@pytest.mark.parametrize(("cls", "norm"), CASES)
def test_passes_per_image_is_the_counted_cost(cls: type[Attack], norm: str) -> None:
    """Exact where nothing breaks (tiny weights, class 0 far ahead: every search runs to its end), an upper bound
    where images break (an attack may stop early on them)."""
    x = _images()
    unbreakable = Counted(classes=10, scale=1e-3, margin=5.0)  # 10: every targeted search has its target
    y = torch.zeros(len(x), dtype=torch.long)
    attack = _attack(cls, norm)
    results = attack.craft_levels(unbreakable, x, y, LEVELS)
    with torch.no_grad():
        assert (unbreakable.linear(torch.cat([r.x_adv for r in results]).flatten(1)).argmax(1) == 0).all()
    assert unbreakable.passes / len(y) == pytest.approx(attack.passes_per_image(len(LEVELS)))

    breakable, x, y = _binary()
    _attack(cls, norm).craft_levels(breakable, x, y, LEVELS)
    assert breakable.passes / len(y) <= attack.passes_per_image(len(LEVELS)) + 1e-9


@pytest.mark.parametrize(("cls", "norm"), CASES)
def test_traits_say_what_the_attack_does(cls: type[Attack], norm: str) -> None:
    model, x, y = _binary()
    attack = _attack(cls, norm)
    (result,) = attack.craft_levels(model, x, y, [25.0])
    per_image = model.passes / len(y)
    assert attack.uses_gradients == (model.backwards > 0), "uses_gradients: it takes input gradients"
    assert attack.iterative == (per_image > GRADIENT_PASS + FORWARD_PASS), "iterative: more than one step a level"
    assert attack.minimal_norm == (result.min_snr_db is not None), "minimal_norm: it reports minimal SNRs"
    if attack.minimal_norm:  # the minimal perturbation fits where the budget is larger: broken there
        fits = result.min_snr_db > 25.0 + 0.01
        assert fits.any()
        assert (_margin(model, result.x_adv, y)[fits] < 0).all()
    other = _attack(cls, norm).perturb(model, x, 1 - y, 25.0)
    assert attack.uses_labels != torch.equal(other, result.x_adv), "uses_labels: the labels change the result"
