"""Smoothness under ordinary augmentation on un-augmented samples (`dataset.unaugmented_fraction`).

The data module leaves the last n rows of a training batch un-augmented and says so, (x, y, n); the module
marks only those rows clean, so the smoothness loss (and any regularizer reading the clean mask) uses them.
"""

from __future__ import annotations

import pytest
import torch

from adv_smooth.defenses import Compose, Defense, LaplacianSmoothness, TrainBatch
from adv_smooth.defenses.adversarial import AdversarialTraining
from adv_smooth.lightning import RobustClassifier
from adv_smooth.models import PreActResNet

pytestmark = pytest.mark.usefixtures("one_thread")


class _Spy(Defense):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[TrainBatch] = []

    def loss_terms(self, batch, logits, activations):
        self.batches.append(batch)
        return {}


def _step(defense: Defense, batch: tuple) -> torch.Tensor:
    torch.manual_seed(0)
    module = RobustClassifier(PreActResNet(10, 1, width=4, blocks=(1, 1)).train(), defense)
    module.log = lambda *args, **kwargs: None  # no trainer: the step's logging is not under test
    return module.training_step(batch, 0)


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_the_last_rows_are_the_clean_ones_and_the_count_is_known() -> None:
    spy = _Spy()
    _step(spy, (*_batch(), 3))
    (batch,) = spy.batches
    assert batch.clean_mask.tolist() == [False] * 5 + [True] * 3 and batch.clean_count == 3
    spy = _Spy()
    _step(spy, _batch())  # no count: every row is an unmodified image, as before
    assert spy.batches[0].clean_mask.all() and spy.batches[0].clean_count == 8


@pytest.mark.parametrize(("unaugmented", "clean"), [(4, [4, 5, 6, 7]), (2, [6, 7]), (6, [4, 5, 6, 7])])
def test_with_adversarial_training_clean_means_unaugmented_and_not_adversarial(unaugmented: int, clean: list) -> None:
    spy = _Spy()
    _step(Compose([AdversarialTraining(fraction=0.5, magnitude="sign"), spy]), (*_batch(), unaugmented))
    assert torch.nonzero(spy.batches[0].clean_mask).flatten().tolist() == clean


def test_smoothness_uses_only_the_unaugmented_rows() -> None:
    x, y = _batch()
    x_other = x.clone()
    x_other[:5] = torch.rand(5, 1, 8, 8)  # change only the augmented rows ...
    smooth = LaplacianSmoothness(gamma=0.5, m=1)
    torch.manual_seed(0)
    net = PreActResNet(10, 1, width=4, blocks=(1, 1)).eval()  # eval: rows do not share BatchNorm statistics
    terms = []
    for images in (x, x_other):
        logits, taps = net(images, return_activations=True)
        terms.append(smooth.loss_terms(TrainBatch.clean(images, y, clean_rows=3), logits, taps)["smooth"])
    torch.testing.assert_close(terms[0], terms[1])  # ... and the loss does not move
    logits, taps = net(x[5:], return_activations=True)
    torch.testing.assert_close(terms[0], smooth.loss_terms(TrainBatch.clean(x[5:], y[5:]), logits, taps)["smooth"])
