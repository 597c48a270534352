"""The setup the training and evaluation benchmarks build their runs from: the real Hydra presets, the real
`build_module`, a default-like `pl.Trainer`, synthetic batches of the real shapes and the shared command line,
so they compare Lightning with a plain loop on exactly the objects a training run would use.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict
from torch import Tensor

#: Data facts the model needs, per benchmark resolution: (num_classes, channels, image_size, dataset preset).
DATASETS = {10: (10, 3, 32, "cifar10"), 200: (200, 3, 64, "tiny_imagenet")}
MEAN, STD = (0.48, 0.45, 0.40), (0.25, 0.24, 0.26)  # any constants: speed does not depend on them


def compose_config(dataset: str, defense: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The project's config (`conf/config.yaml`) with a dataset preset (which picks the model preset) and a
    defense preset, as the entry point composes it; `${hydra:...}` paths are not resolved (not needed)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from adv_smooth.app.preflight.command_line import config_dir

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
    logger: str | pl.loggers.Logger,
    log_every_n_steps: int,
    root: Path,
    **extra: Any,
) -> pl.Trainer:
    """`conf/trainer/default.yaml`'s settings, minus what a benchmark must not do (checkpoints, progress bar,
    model summary, sanity validation); `logger` is "none", "csv", "tensorboard" (the project default) or a logger
    object; `extra` are further Trainer arguments (e.g. `limit_val_batches`)."""
    loggers: Any = logger if isinstance(logger, pl.loggers.Logger) else False
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
        **extra,
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
