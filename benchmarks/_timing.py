"""The harness every benchmark shares: timing, interleaved repetitions, summaries, tables, machine facts.

The runs themselves are built in `_setup.py` (the real Hydra presets, the real `build_module`, a default-like
`pl.Trainer`).

Conventions (see `attack_batching.py`):

* Repetitions are interleaved (A, B, ..., then ..., B, A) so drifts in machine load hit every variant
  alike; the median is reported with the spread (max - min) / median over repetitions.
* Wall time is what a run sees. On a GPU the device is synchronized before each clock read. CPU seconds
  of the process (all its threads) are recorded too: they stay meaningful when other jobs share the
  machine, which wall time does not.
* Every result records the machine (threads, load average before/after, torch version) next to the numbers.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytorch_lightning as pl
import torch

from adv_smooth.utils.io import write_json_atomic

T = TypeVar("T")


# ------------------------------------------------------------------------------------------------ timing
def sync(device: torch.device | str | None) -> None:
    """Wait for queued GPU work, so a clock read after it measures the work (no-op on CPU)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device | str | None = None) -> tuple[float, T]:
    """(wall seconds, result) of `fn()`, the device synchronized before both clock reads."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


@dataclass
class Clock:
    """Wall and process-CPU seconds between `start()` and `stop()` (device synchronized at both)."""

    device: torch.device | str | None = None
    wall: float | None = None
    cpu: float | None = None

    def start(self) -> None:
        sync(self.device)
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        sync(self.device)
        self.wall = time.perf_counter() - self._wall0
        self.cpu = time.process_time() - self._cpu0


class StepWindow(pl.Callback):
    """Clocks a Lightning run's steady state: from the start of batch `warmup` to the end of the last batch.

    Training: the window closes at the (callback) `on_train_epoch_end`, which Lightning calls after the last
    step's own bookkeeping (logging at the interval included) and before the epoch-end work (epoch metric
    reduction, logger flush), which `epoch_end` clocks separately: a real epoch has hundreds of steps, so
    that cost must not be spread over the benchmark's few. Test: the window closes at `on_test_end`, epoch
    end included (the robustness callback's reduction is negligible next to its attacks). The Trainer's
    setup and teardown are outside both. `on_start` / `on_stop` open the same window for something else
    (the host-sync audit).
    """

    def __init__(
        self,
        warmup: int,
        device: torch.device | str | None = None,
        on_start: Callable[[], None] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.warmup = warmup
        self.clock = Clock(device)
        self.epoch_end = Clock(device)
        self.last_loss: float | None = None
        self._on_start, self._on_stop = on_start, on_stop

    def _maybe_start(self, batch_idx: int) -> None:
        if batch_idx == self.warmup:
            self.clock.start()
            if self._on_start:
                self._on_start()

    def _stop(self) -> None:
        self.clock.stop()
        if self._on_stop:
            self._on_stop()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._maybe_start(batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == trainer.num_training_batches - 1:  # read once, at the end: no per-step sync
            self.last_loss = float(outputs["loss"])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop()
        self.epoch_end.start()

    def on_train_end(self, trainer, pl_module) -> None:
        self.epoch_end.stop()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._maybe_start(batch_idx)

    def on_test_end(self, trainer, pl_module) -> None:
        self._stop()


# ------------------------------------------------------------------------------------ repetitions, stats
def interleaved(reps: int, runners: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run every runner once per repetition, alternating the order (forward, then reversed, ...)."""
    names = list(runners)
    out: dict[str, list[T]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names if rep % 2 == 0 else reversed(names):
            out[name].append(runners[name]())
    return out


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and spread = (max - min) / median in percent, with the values themselves."""
    values = [float(v) for v in values]
    median = statistics.median(values)
    spread = 100.0 * (max(values) - min(values)) / median if median else float("nan")
    return {"median": median, "min": min(values), "max": max(values), "spread_pct": spread, "values": values}


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, Any]:
    """Per-repetition ratios (numerator_i / denominator_i) summarized: pairs share the machine's state."""
    return summarize([a / b for a, b in zip(numerator, denominator)])


def paired_overhead(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, Any]:
    """`paired_ratios` minus one (0.05 = 5 % slower), e.g. Lightning's time over the plain loop's."""
    return summarize([a / b - 1 for a, b in zip(numerator, denominator)])


def target_status(value: float | None, limit: float | None) -> str:
    """ "pass"/"FAIL" against an upper limit; "not measured" when this run could not measure it."""
    if value is None:
        return "not measured"
    if limit is None:
        return "measured (no limit recorded)"
    return "pass" if value <= limit else "FAIL"


# --------------------------------------------------------------------------------------- machine, table
def load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """What the numbers were measured on (the load average is recorded by the caller, before and after)."""
    device = torch.device(device)
    info = {
        "device": device.type,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the first row is the header, underlined."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def quiet_lightning() -> None:
    """Silence Lightning's advice (workers, GPU available, ...): it would drown the table."""
    import logging

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def publish(report: str, out: str | Path, result: dict[str, Any]) -> dict[str, Any]:
    """Every benchmark's ending: its report on stdout, `result` written whole to `out` (atomically: an interrupted
    run leaves the previous file), and where it went."""
    print(report)
    write_json_atomic(out, result)
    print(f"wrote {out}")
    return result
