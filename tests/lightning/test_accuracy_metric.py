"""The sync-free accuracy: the same numbers as torchmetrics', over every sample or a mask's (that its update makes no
host sync: `python -m benchmarks.host_syncs --smoke`, tests/benchmarks/test_host_syncs.py)."""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassAccuracy

from adv_smooth.lightning.metrics import Accuracy


def _batches(classes: int = 7):
    g = torch.Generator().manual_seed(0)
    for n in (13, 8, 21):
        logits = torch.randn(n, classes, generator=g)
        targets = torch.randint(0, classes, (n,), generator=g)
        mask = torch.rand(n, generator=g) < 0.6
        yield logits, targets, mask


def test_matches_torchmetrics_micro_accuracy_over_all_and_masked_samples() -> None:
    ours_all, ours_masked = Accuracy(), Accuracy()
    ref_all, ref_masked = MulticlassAccuracy(7, average="micro"), MulticlassAccuracy(7, average="micro")
    for logits, targets, mask in _batches():
        ours_all.update(logits, targets)
        ours_masked.update(logits, targets, mask)
        ref_all.update(logits, targets)
        ref_masked.update(logits[mask], targets[mask])
    torch.testing.assert_close(ours_all.compute(), ref_all.compute())
    torch.testing.assert_close(ours_masked.compute(), ref_masked.compute())
    assert 0 < float(ours_masked.compute()) < 1


def test_empty_mask_gives_zero_not_nan() -> None:
    metric = Accuracy()
    metric.update(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.bool))
    assert float(metric.compute()) == 0.0
