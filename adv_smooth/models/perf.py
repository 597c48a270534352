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

from adv_smooth.utils.errors import require, require_int

__all__ = ["apply_perf", "resolve_perf", "to_channels_last"]

AUTO = "auto"


def resolve_perf(
    channels_last: bool | str = False,
    compile: bool | str = False,
    compile_min_steps: int = 0,
    compile_options: Mapping[str, Any] | None = None,
    *,
    device: torch.device | str | None = None,
    planned_steps: int | None = None,
) -> dict[str, Any]:
    """`apply_perf`'s arguments for this run, with `auto` decided: what a GPU user wants without thinking.

    * `channels_last: auto` is on for a CUDA device (NHWC is what the tensor cores' convolutions read; measured
      in benchmarks/results/gpu.json) and off on a CPU, whose default job keeps its published figures.
    * `compile: auto` compiles on a CUDA device when the fit plans at least `compile_min_steps` optimizer steps:
      compiling costs a fixed start-up (and a recompile per new batch shape in evaluation), repaid only by
      enough faster steps; the threshold comes from the measured break-even (benchmarks/gpu.py).
    """
    for key, value in (("channels_last", channels_last), ("compile", compile)):
        require(value == AUTO or isinstance(value, bool), key, value, "true, false or auto (GPU only)")
    require_int("compile_min_steps", compile_min_steps, 0)
    gpu = device is not None and torch.device(device).type == "cuda"
    if channels_last == AUTO:
        channels_last = gpu
    if compile == AUTO:
        compile = gpu and planned_steps is not None and planned_steps >= compile_min_steps
    return {"channels_last": channels_last, "compile": compile, "compile_options": compile_options}


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
