"""The speed switches keep the module object and its state_dict keys (checkpoints load across them)."""

from __future__ import annotations

import torch

from adv_smooth.models import PreActResNet
from adv_smooth.models.perf import apply_perf


def test_apply_perf_keeps_the_module_and_its_keys() -> None:
    net = PreActResNet(10, 3, width=4, blocks=(1,))
    keys = list(net.state_dict())
    out = apply_perf(net, channels_last=True, compile=True)  # compile is lazy: nothing is compiled here
    assert out is net and list(out.state_dict()) == keys
    assert net.stem.weight.is_contiguous(memory_format=torch.channels_last)
    assert apply_perf(PreActResNet(10, 3, width=4, blocks=(1,))).stem.weight.is_contiguous()
