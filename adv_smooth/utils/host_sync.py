"""A host-sync audit: counts the calls that would make the host wait for the GPU (benchmarks and tests).

It lives outside the training code on purpose: nothing in a run uses it; the benchmarks and tests wrap a
few steps of a tiny model in it to check a training step stays asynchronous.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

__all__ = ["HostSyncAudit", "host_sync_audit"]

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
