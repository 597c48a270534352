"""Refuse more devices than this machine has, before Lightning starts a process per device.

Lightning checks a GPU count against the GPUs it sees, but takes any CPU count: `trainer=cpu trainer.devices=64`
on a 2-core machine starts 64 DDP processes that fight over two cores. Each CPU device is one process, so the
count is bounded by the cores this process may run on. GPUs are counted the same way, so both refusals read
alike (and come before Lightning's multi-line ones).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from adv_smooth.utils.errors import UserError


def available_cpus() -> int:
    """The cores this process may run on (its affinity mask, which a scheduler may narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _kind(accelerator: Any) -> str:
    """`cpu` or `gpu`: what `auto` resolves to here (other accelerators are left to Lightning)."""
    import torch

    name = str(accelerator)
    if name == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return "gpu" if name in ("gpu", "cuda") else name


def _requested(devices: Any) -> int | None:
    """How many devices `devices` asks for (None for `auto` / -1, which mean "all there are")."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if "," in text:
        return len([d for d in text.split(",") if d.strip()])
    try:
        count = int(text)
    except ValueError:
        return None
    return count if count >= 1 else None


def check_devices(trainer: Mapping[str, Any]) -> None:
    """Raise a one-line `UserError` when `trainer.devices` asks for more CPUs or GPUs than this machine has."""
    import torch

    kind = _kind(trainer.get("accelerator", "auto"))
    devices = trainer.get("devices", "auto")
    requested = _requested(devices)
    if requested is None or kind not in ("cpu", "gpu"):
        return
    have = available_cpus() if kind == "cpu" else torch.cuda.device_count()
    if isinstance(devices, (list, tuple)) and kind == "gpu":
        missing = [d for d in devices if isinstance(d, int) and d >= have]
        if missing:
            raise UserError(
                f"trainer.devices={list(devices)!r} is invalid: this machine has {have} GPU(s) (indices 0 to "
                f"{have - 1}), so GPU {missing[0]} does not exist"
            )
    if requested > have:
        what = (
            f"{have} CPU core(s) for this process (one process per CPU device)" if kind == "cpu" else f"{have} GPU(s)"
        )
        raise UserError(
            f"trainer.devices={devices!r} is invalid: {kind} devices beyond what exists: this machine has {what}"
        )
