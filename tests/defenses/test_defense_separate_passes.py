"""Separate forward passes (`defense.separate_passes`): the original code's adversarial training.

The adversarial half and the clean half go through the network one after the other, so each is normalized
by its own BatchNorm batch statistics, both update the running statistics, and the smoothness loss reads
the clean pass.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from adv_smooth.attacks.fgsm import FGSM
from adv_smooth.defenses import Compose, Defense, LaplacianSmoothness, TrainBatch
from adv_smooth.defenses.adversarial import AdversarialTraining
from adv_smooth.defenses.objective import forward_passes
from adv_smooth.lightning import RobustClassifier
from adv_smooth.models import PreActResNet
from tests.conftest import quiet_trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def _net() -> PreActResNet:
    torch.manual_seed(0)
    return PreActResNet(num_classes=10, in_channels=1, width=4, blocks=(1, 1)).train()


def _data(n: int = 8) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


class _Spy(Defense):
    """Records what `loss_terms` receives."""

    def __init__(self) -> None:
        super().__init__()
        self.needs_activations = True
        self.seen: list[tuple[TrainBatch, list[Tensor]]] = []

    def loss_terms(self, batch, logits, activations):
        self.seen.append((batch, [a.detach().clone() for a in activations]))
        return {}


def _record_bn(bn: nn.BatchNorm2d) -> list[tuple[bool, Tensor, Tensor]]:
    """(training, input, output) of every call of `bn`."""
    calls: list[tuple[bool, Tensor, Tensor]] = []
    bn.register_forward_hook(lambda m, inp, out: calls.append((m.training, inp[0].detach(), out.detach())))
    return calls


def _prepared(net: nn.Module, separate: bool, n: int = 8) -> tuple[TrainBatch, Tensor]:
    x, y = _data(n)
    defense = AdversarialTraining(
        fraction=0.5, magnitude="sign", adv_weight=1.0, clean_weight=0.3, separate_passes=separate
    )
    return defense.prepare_batch(net, TrainBatch.clean(x, y)), x


def test_prepare_batch_asks_for_two_passes_only_when_told() -> None:
    assert _prepared(_net(), separate=True)[0].passes == (4, 4)
    assert _prepared(_net(), separate=False)[0].passes is None
    full = AdversarialTraining(fraction=1.0, adv_weight=1.0, separate_passes=True)
    assert full.prepare_batch(_net(), TrainBatch.clean(*_data(4))).passes is None  # nothing clean: one pass


@pytest.mark.parametrize("separate", [True, False])
def test_each_half_is_normalized_by_its_own_batch_statistics(separate: bool) -> None:
    net = _net()
    tb, x = _prepared(net, separate)
    bn = net.blocks[0].bn1  # sees the stem's output of each row
    calls = _record_bn(bn)
    forward_passes(net, tb, _Spy().needs_activations)
    train_calls = [(inp, out) for training, inp, out in calls if training]
    with torch.no_grad():
        stem = net.stem((tb.inputs - net.mean) / net.std)
    if not separate:
        assert len(train_calls) == 1 and train_calls[0][0].shape[0] == 8
        return
    (adv_in, adv_out), (clean_in, clean_out) = train_calls
    torch.testing.assert_close(adv_in, stem[:4])  # the adversarial rows only ...
    torch.testing.assert_close(clean_in, stem[4:])  # ... then the clean rows only
    for out in (adv_out, clean_out):  # each call normalized by its own statistics (weight 1, bias 0 at init)
        torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
        torch.testing.assert_close(out.var(dim=(0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3, rtol=0)


def test_smoothness_reads_the_clean_pass() -> None:
    """The clean rows' activations are exactly those of a forward pass over the clean rows alone."""
    net = _net()
    tb, _ = _prepared(net, separate=True)
    reference = copy.deepcopy(net)
    spy = _Spy()
    logits, activations = forward_passes(net, tb, spy.needs_activations)
    spy.loss_terms(tb, logits, activations)
    _, alone = reference(tb.inputs[4:], return_activations=True)
    ((batch, seen),) = spy.seen
    assert batch.clean_mask.tolist() == [False] * 4 + [True] * 4
    for tap, expected in zip(seen, alone):
        torch.testing.assert_close(tap[4:], expected.detach())
    # and the smoothness loss on this batch is the loss of the clean pass alone
    smooth = LaplacianSmoothness(gamma=0.5, m=1)
    clean_only = TrainBatch.clean(tb.inputs[4:], tb.targets[4:])
    torch.testing.assert_close(
        smooth.loss_terms(tb, logits, seen)["smooth"],
        smooth.loss_terms(clean_only, logits[4:], [a.detach() for a in alone])["smooth"],
    )


def _fit_steps(defense: Defense, steps: int = 2) -> PreActResNet:
    net = _net()
    x, y = _data(8 * steps)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    trainer = quiet_trainer(max_steps=steps, limit_val_batches=0)
    trainer.fit(RobustClassifier(net, defense), loader)
    return net


@pytest.mark.parametrize(
    ("separate", "bn_mode", "updates"),
    [(True, "eval", 2), (True, "keep", 3), (False, "eval", 1), (False, "keep", 2)],
    ids=["separate", "separate+train-mode-crafting (the original)", "one pass", "one pass+train-mode-crafting"],
)
def test_running_statistics_updates_per_step(separate: bool, bn_mode: str, updates: int) -> None:
    """Two training passes update the running statistics twice per step; crafting in train mode, as the
    original's `create_adversary` did, adds one more (its forward pass over the clean adversarial half)."""
    attack = FGSM(magnitude="sign", bn_mode=bn_mode)
    net = _fit_steps(
        Compose(
            [
                AdversarialTraining(
                    fraction=0.5, adv_weight=1.0, clean_weight=0.3, separate_passes=separate, attack=attack
                )
            ]
        )
    )
    counts = {int(m.num_batches_tracked) for m in net.modules() if isinstance(m, nn.BatchNorm2d)}
    assert counts == {2 * updates}
