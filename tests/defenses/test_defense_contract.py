"""The contract every defense keeps, checked on every `Defense` subclass found in adv_smooth/defenses/ (discovered,
not listed), built with its defaults on a tiny PreAct ResNet (with the defense's `model_options`):

* the hooks it writes are called by the real training loop (`RobustClassifier` under a Trainer, one step);
* the objective of a batch is finite, every term of it, and the weights stay finite after the step;
* `extra_passes_per_image` is what a counting network sees beyond the step's own training pass: the passes
  made while preparing the batch and computing the loss terms, and any rows added to the training pass (each
  at `TRAINING_PASS`).
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import torch
from torch import Tensor, nn

import adv_smooth.defenses as defenses_package
from adv_smooth.attacks.base import FORWARD_PASS, GRADIENT_PASS, TRAINING_PASS
from adv_smooth.defenses import Compose, Defense, TrainBatch
from adv_smooth.defenses.objective import training_objective
from adv_smooth.lightning import RobustClassifier
from adv_smooth.models import PreActResNet
from tests.conftest import quiet_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

HOOKS = ("setup", "prepare_batch", "loss_terms", "after_optimizer_step")


def defense_classes() -> list[type[Defense]]:
    """Every `Defense` subclass defined in a module of adv_smooth/defenses/ (`Compose` combines the others)."""
    found = []
    for info in pkgutil.iter_modules(defenses_package.__path__):
        module = importlib.import_module(f"{defenses_package.__name__}.{info.name}")
        for obj in vars(module).values():
            concrete = isinstance(obj, type) and issubclass(obj, Defense) and obj not in (Defense, Compose)
            if concrete and obj.__module__ == module.__name__ and not obj.__name__.startswith("_"):
                found.append(obj)
    return sorted(found, key=lambda cls: cls.__name__)


CLASSES = [pytest.param(cls, id=cls.__name__) for cls in defense_classes()]


class Counted(nn.Module):
    """The network, counting its forward and backward calls in forward-pass units summed over rows: a forward is
    `FORWARD_PASS`, a forward with its backward an input gradient (`GRADIENT_PASS`), what crafting costs (the
    training pass itself is counted apart)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.passes = 0.0

    def forward(self, x: Tensor, **options) -> object:
        out = self.net(x, **options)
        logits = out[0] if isinstance(out, tuple) else out
        self.passes += len(x) * FORWARD_PASS
        if logits.requires_grad:  # counted when a backward pass reaches the logits
            logits.register_hook(lambda grad: self._backward(len(grad)))
        return out

    def _backward(self, rows: int) -> None:
        self.passes += rows * (GRADIENT_PASS - FORWARD_PASS)


def _network(defense: Defense) -> Counted:
    torch.manual_seed(0)
    return Counted(PreActResNet(num_classes=10, in_channels=1, width=4, blocks=(1, 1), **defense.model_options))


def _data(n: int = 8) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    return 0.1 + 0.8 * torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_every_defense_is_found() -> None:
    names = {cls.__name__ for cls in defense_classes()}
    assert {"AdversarialTraining", "Trades", "Parseval", "LaplacianSmoothness"} <= names


@pytest.mark.parametrize("cls", CLASSES)
def test_the_hooks_it_writes_are_called_by_the_training_loop(cls: type[Defense]) -> None:
    defense = cls()
    written = [hook for hook in HOOKS if getattr(cls, hook) is not getattr(Defense, hook)]
    assert written, f"{cls.__name__} writes none of the hooks"
    calls = dict.fromkeys(written, 0)
    for hook in written:
        original = getattr(defense, hook)

        def spy(*args, _hook=hook, _original=original, **kwargs):
            calls[_hook] += 1
            return _original(*args, **kwargs)

        object.__setattr__(defense, hook, spy)
    net = _network(defense)
    before = [p.detach().clone() for p in net.parameters()]
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    quiet_trainer(max_steps=1, limit_val_batches=0).fit(RobustClassifier(net, defense), loader)
    assert all(count >= 1 for count in calls.values()), calls
    after = list(net.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before)), "the step trained the network"


@pytest.mark.parametrize("cls", CLASSES)
def test_the_objective_is_finite(cls: type[Defense]) -> None:
    defense = cls()
    x, y = _data()
    objective = training_objective(_network(defense).train(), defense, TrainBatch.clean(x, y))
    assert torch.isfinite(objective.loss)
    assert all(torch.isfinite(term) for term in objective.terms.values()), objective.terms
    if cls.loss_terms is not Defense.loss_terms:  # a defense writing loss terms adds at least one
        assert set(objective.terms) - {"ce"}


@pytest.mark.parametrize("cls", CLASSES)
def test_extra_passes_per_image_is_the_counted_cost(cls: type[Defense]) -> None:
    defense = cls()
    net = _network(defense).train()
    x, y = _data()
    batch = TrainBatch.clean(x, y)
    tb = defense.prepare_batch(net, batch)  # crafting, if any
    crafting = net.passes
    net.passes = 0.0
    with torch.no_grad():  # the step's own pass (counted apart below, by its rows)
        logits, activations = net(tb.inputs, return_activations=True)
    net.passes = 0.0
    defense.loss_terms(tb, logits, activations)
    counted = (crafting + net.passes + (len(tb.inputs) - len(y)) * TRAINING_PASS) / len(y)
    assert defense.extra_passes_per_image() == pytest.approx(counted)
