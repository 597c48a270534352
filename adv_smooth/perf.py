"""Speed switches for the network, and a host-sync audit to check a training step stays asynchronous.

Config (top level of `conf/config.yaml`):

    perf:
      channels_last: false   # NHWC weights: faster convolutions on tensor-core GPUs (and usually on CPU oneDNN)
      compile: false         # torch.compile the network's forward only

bf16 autocast is not here: it is Lightning's `trainer.precision=bf16-mixed` (the plain loop in
`benchmarks/training.py` uses `torch.autocast` the same way).

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

import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

__all__ = ["HostSyncAudit", "apply_perf", "host_sync_audit", "to_channels_last"]


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


# ---------------------------------------------------------------------------------------- host-sync audit
#: Tensor -> Python conversions: on a GPU each waits for every queued kernel.
_READBACKS = {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "cpu"}
#: Ops whose output size depends on the data: the host must read a count back from the device.
_DATA_DEPENDENT = {"nonzero", "unique", "masked_select", "argwhere", "unique_consecutive"}
#: Factories that copy host data to a device (`torch.tensor(v, device=cuda)` is a blocking copy).
_HOST_TO_DEVICE = {"tensor", "as_tensor"}

_TORCH_DIR = str(Path(torch.__file__).resolve().parent)
_THIS_FILE = str(Path(__file__).resolve())


def _has_bool_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, Tensor) and i.dtype == torch.bool for i in items)


def _sync_kind(func: Any, args: tuple, kwargs: Mapping[str, Any]) -> str | None:
    """Which kind of host sync `func(*args, **kwargs)` causes on a GPU, or None if it does not."""
    name = getattr(func, "__name__", "")
    if name in _READBACKS:
        return f"readback .{name.strip('_')}()"
    if name in _DATA_DEPENDENT:
        return f"data-dependent {name}"
    if name in ("__getitem__", "__setitem__") and len(args) > 1 and _has_bool_index(args[1]):
        return f"boolean-mask {name.strip('_')}"
    if name in _HOST_TO_DEVICE and kwargs.get("device") is not None:
        return f"host->device torch.{name}(..., device=)"
    return None


def _call_site(skip_dirs: tuple[str, ...]) -> str:
    """`path:line (function)` of the innermost frame outside torch and this module."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(skip_dirs) and filename != _THIS_FILE:
            short = filename.split("site-packages/")[-1]
            with suppress(ValueError):
                short = str(Path(filename).resolve().relative_to(Path.cwd()))
            return f"{short}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "<unknown>"


class HostSyncAudit(TorchFunctionMode):
    """Counts Python-level calls that force a device->host sync on a GPU, by kind and call site.

    It works on CPU too (nothing actually waits there, but the same calls would on a GPU), which is how the
    benchmarks check "no per-step syncs beyond the logging interval" on a machine without one. Blind to
    syncs made inside C++ kernels and inside compiled graphs; audit an uncompiled model. Slow: audit a few
    steps of a tiny model, never a timed run. Toggle `recording` to count only a window.
    """

    def __init__(self, skip_dirs: tuple[str, ...] = (_TORCH_DIR,)) -> None:
        super().__init__()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.recording = True
        self._skip_dirs = skip_dirs

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Mapping[str, Any] | None = None):
        kwargs = kwargs or {}
        if self.recording:
            kind = _sync_kind(func, args, kwargs)
            if kind is not None:
                self.counts[(kind, _call_site(self._skip_dirs))] += 1
        return func(*args, **kwargs)

    def per_step(self, steps: int) -> list[dict[str, Any]]:
        """Sites sorted by frequency: `{"kind", "site", "per_step"}` (1.0 = every step, 0.1 = every 10th)."""
        rows = [{"kind": k, "site": s, "per_step": n / max(steps, 1)} for (k, s), n in self.counts.items()]
        return sorted(rows, key=lambda r: (-r["per_step"], r["site"]))


@contextmanager
def host_sync_audit() -> Iterator[HostSyncAudit]:
    """`with host_sync_audit() as audit: ...` then `audit.counts` / `audit.per_step(steps)`."""
    audit = HostSyncAudit()
    with audit:
        yield audit
