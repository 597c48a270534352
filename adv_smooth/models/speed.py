"""Speed switches for the network (NHWC weights, torch.compile), applied when the network is built.

Config (top level of `conf/config.yaml`):

    perf:
      channels_last: false   # NHWC weights: faster convolutions on tensor-core GPUs (and usually on CPU oneDNN)
      compile: false         # torch.compile the network's forward only

bf16 autocast is not here: it is Lightning's `trainer.precision=bf16-mixed` (the plain loop in
`benchmarks/training_paths.py` uses `torch.autocast` the same way).

Decisions:

* `compile` compiles the network *in place* (`nn.Module.compile`): the module object, its attributes
  (`num_classes`, `linear`) and its `state_dict` keys stay exactly as they are, so checkpoints written with
  and without compile load into each other and into checkpoint evaluation. `torch.compile(net)` would wrap
  it in an `OptimizedModule` whose keys gain an `_orig_mod.` prefix.
* Only the network is compiled. Attacks, `torch.autograd.grad`, defense hooks and the Parseval retraction
  run eagerly around it: they are small, data-dependent Python, and a graph break inside them would cost
  more than it saves. Each (train/eval mode, `return_activations`, batch size) is a separate graph.
* `channels_last` converts the weights only. Inputs need no conversion: the first convolution sees a
  channels-last weight and produces channels-last output, so every activation after it is NHWC already.
  Use `to_channels_last` on a batch if a profile ever shows the stem's layout conversion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["apply_perf", "to_channels_last"]


def apply_perf(
    net: nn.Module, channels_last: bool = False, compile: bool = False, compile_options: Mapping[str, Any] | None = None
) -> nn.Module:
    """Apply the speed switches to `net` in place and return it (the same object).

    `compile_options` are passed to `torch.compile` (e.g. `{"mode": "max-autotune"}`, `{"dynamic": False}`).
    """
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile:
        net.compile(**dict(compile_options or {}))
    return net


def to_channels_last(x: Tensor) -> Tensor:
    """A 4-D batch in NHWC memory order (a no-op for other ranks or when it already is)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
