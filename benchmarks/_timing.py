"""The harness every benchmark shares: timing, interleaved repetitions, summaries, tables, machine facts.

Also the setup the training and evaluation benchmarks build their runs from (the real Hydra presets, the
real `build_module`, a default-like `pl.Trainer`), so both compare Lightning with a plain loop on exactly
the objects a training run would use.

Conventions (see `attack_batching.py`):

* Repetitions are interleaved (A, B, ..., then ..., B, A) so drifts in machine load hit every variant
  alike; the median is reported with the spread (max - min) / median over repetitions.
* Wall time is what a run sees. On a GPU the device is synchronized before each clock read. CPU seconds
  of the process (all its threads) are recorded too: they stay meaningful when other jobs share the
  machine, which wall time does not.
* Every result records the machine (threads, load average before/after, torch version) next to the numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict
from torch import Tensor

T = TypeVar("T")

#: Data facts the model needs, per benchmark resolution: (num_classes, channels, image_size, dataset preset).
DATASETS = {10: (10, 3, 32, "cifar10"), 200: (200, 3, 64, "tiny_imagenet")}
MEAN, STD = (0.48, 0.45, 0.40), (0.25, 0.24, 0.26)  # any constants: speed does not depend on them


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


# ------------------------------------------------------------------------------------------ shared setup
def compose_config(dataset: str, defense: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The project's config (`conf/config.yaml`) with a dataset preset (which picks the model preset) and a
    defense preset, as the entry point composes it; `${hydra:...}` paths are not resolved (not needed)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from adv_smooth.app.cli import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("config", overrides=[f"dataset={dataset}", f"defense={defense}", *overrides])


def data_facts(classes: int) -> SimpleNamespace:
    """What `build_module` reads from a datamodule, without loading any data."""
    num_classes, channels, _, _ = DATASETS[classes]
    return SimpleNamespace(num_classes=num_classes, channels=channels, mean=MEAN[:channels], std=STD[:channels])


def build_run(cfg: DictConfig, classes: int, seed: int, channels_last: bool = False, compile: bool = False):
    """A fresh `RobustClassifier` (and its defense) from the real builders, same weights for a given seed."""
    from adv_smooth.app.build import build_defense, build_module

    with open_dict(cfg):
        cfg.perf = {"channels_last": channels_last, "compile": compile}
    torch.manual_seed(seed)
    defense = build_defense(cfg.defense)
    return build_module(cfg, data_facts(classes), defense)


class Batches:
    """Pre-made batches, iterable like a DataLoader. Not a list: Lightning would read a list as several loaders."""

    def __init__(self, batches: Sequence[tuple[Tensor, Tensor]]) -> None:
        self.batches = list(batches)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.batches[index]


def synthetic_batches(
    n_batches: int, batch_size: int, classes: int, device: torch.device | str, seed: int = 0
) -> Batches:
    """Float images in [0, 1] (what `on_after_batch_transfer` hands the model) and labels, on the device.

    Already on the device, so neither path pays a host-to-device copy: Lightning's own transfer is a no-op.
    """
    _, channels, size, _ = DATASETS[classes]
    g = torch.Generator().manual_seed(seed)
    return Batches(
        (
            torch.rand(batch_size, channels, size, size, generator=g).to(device),
            torch.randint(0, classes, (batch_size,), generator=g).to(device),
        )
        for _ in range(n_batches)
    )


def make_trainer(
    device: torch.device | str,
    precision: str,
    callbacks: Sequence[pl.Callback],
    logger: str,
    log_every_n_steps: int,
    root: Path,
) -> pl.Trainer:
    """`conf/trainer/default.yaml`'s settings, minus what a benchmark must not do (checkpoints, progress bar,
    model summary, sanity validation); `logger` is "none", "csv" or "tensorboard" (the project default)."""
    loggers: Any = False
    if logger == "tensorboard":
        loggers = pl.loggers.TensorBoardLogger(str(root), name="tensorboard", version="", default_hp_metric=False)
    elif logger == "csv":
        loggers = pl.loggers.CSVLogger(str(root), name="csv", version="")
    return pl.Trainer(
        accelerator="gpu" if torch.device(device).type == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_epochs=1,
        log_every_n_steps=log_every_n_steps,
        deterministic=False,
        inference_mode=False,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=loggers,
        callbacks=list(callbacks),
        default_root_dir=str(root),
    )


def autocast(device: torch.device | str, precision: str):
    """The autocast context Lightning's `precision` plugin opens around a step, for the plain loops."""
    import contextlib

    if precision == "bf16-mixed":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    if precision in ("32-true", "32"):
        return contextlib.nullcontext()
    raise ValueError(f"precision={precision!r}: the benchmarks support 32-true and bf16-mixed")


@dataclass
class RunSettings:
    """What every benchmark run depends on; each benchmark adds its own knobs and stores them in its JSON."""

    width: int = 16
    batch_size: int = 128
    warmup: int = 1
    reps: int = 5
    device: str = "cpu"
    precision: str = "32-true"
    channels_last: bool = False
    compile: bool = False
    logger: str = "none"
    quick: bool = False
    seed: int = 0
    model_overrides: list[str] = field(default_factory=list)


def common_arguments(
    parser: argparse.ArgumentParser, quick_help: str, logger_default: str, out: Path, quick_reps: int = 3
) -> None:
    """The command-line options both benchmarks share (their own, e.g. --steps, are added by each)."""
    parser.set_defaults(quick_reps=quick_reps)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--width", type=int, help="network width (default 16 on CPU, 64 on cuda)")
    parser.add_argument("--reps", type=int, help=f"interleaved repetitions (default 5, quick {quick_reps})")
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--logger", default=logger_default, choices=["none", "csv", "tensorboard"])
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=out)


def common_settings(a: argparse.Namespace) -> dict[str, Any]:
    """Apply --threads and return the shared RunSettings fields parsed by `common_arguments`."""
    if a.threads:
        torch.set_num_threads(a.threads)
    gpu = torch.device(a.device).type == "cuda"
    return {
        "width": a.width or (64 if gpu else 16),
        "reps": a.reps or (a.quick_reps if a.quick else 5),
        "device": a.device,
        "precision": a.precision,
        "channels_last": a.channels_last,
        "compile": a.compile,
        "logger": a.logger,
        "quick": a.quick,
    }
