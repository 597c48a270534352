"""The host-sync audit finds each kind of device->host sync, and the smoothness loss adds none when it can."""

from __future__ import annotations

import torch

from adv_smooth.defenses.base import TrainBatch
from adv_smooth.defenses.smoothness import LaplacianSmoothness
from adv_smooth.utils.host_sync import HostSyncAudit


def test_host_sync_audit_finds_each_kind() -> None:
    x = torch.arange(4.0)
    with HostSyncAudit() as audit:
        x.sum().item()
        _ = x[x > 1]
        torch.tensor(3, device="cpu")
        torch.full((), 3, device="cpu")  # a fill: no copy, not a sync
        _ = x * 2
    kinds = sorted(k for k, _ in audit.counts)
    assert kinds == ["boolean-mask getitem", "host->device torch.tensor(..., device=)", "readback .item()"]
    assert all("test_host_sync.py" in site for _, site in audit.counts)


def test_smoothness_loss_syncs_only_for_an_unknown_clean_count() -> None:
    """The count known on the host (adversarial training passes it on): no sync; unknown: one, however many
    taps (positions instead of boolean masks). Both select the same rows, so the loss is the same."""
    n, classes = 8, 3
    taps = [torch.rand(n, 2, 2, 2) for _ in range(5)]
    clean = torch.arange(n) >= 3
    unknown = TrainBatch(torch.zeros(n, 3, 2, 2), torch.arange(n) % classes, clean, torch.ones(n))
    known = unknown.replace(clean_count=5)
    losses = {}
    for name, batch, syncs in (("unknown", unknown, 1), ("known", known, 0)):
        with HostSyncAudit() as audit:
            losses[name] = LaplacianSmoothness(m=2).loss_terms(batch, torch.zeros(n, classes), taps)["smooth"]
        assert sum(audit.counts.values()) == syncs, (name, audit.counts)
    assert torch.equal(losses["known"], losses["unknown"])
