"""The measurements `python -m benchmarks.gpu` is made of: the project's path and the plain reference, side by side.

Project side: `trainer.fit` / `trainer.test` of the real `RobustClassifier`, built by the real builders from the
composed presets, fed by a real `ImageDataModule` (synthetic uint8 images, so no download) whose data the
`dataset.on_device=auto` rule keeps on the GPU, with the project's TensorBoard logger at its default interval.
Plain side: `benchmarks/plain_reference.py`. Repetitions interleave the two; the medians are compared.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from adv_smooth.app.build import build_callback
from adv_smooth.data.base import ImageDataModule, Splits
from benchmarks import plain_reference as plain
from benchmarks._setup import Batches, build_run, compose_config, make_trainer
from benchmarks._timing import Clock, StepWindow, timed


class SyntheticImages(ImageDataModule):
    """`n` random uint8 CIFAR-size images (train; val carved by `val_fraction`) and `n_test` more: the real data
    module's loaders, on-device rule and augmentation, without a file."""

    def __init__(self, n: int, n_test: int = 0, classes: int = 10, seed: int = 0, **options: Any) -> None:
        super().__init__(root=".", download=False, **options)
        self.n, self.n_test, self.n_classes, self.seed = n, n_test, classes, seed

    def load_splits(self) -> Splits:
        images, labels = synthetic_uint8(self.n + self.n_test, self.n_classes, self.seed)
        train, test = (images[: self.n], labels[: self.n]), (images[self.n :], labels[self.n :])
        return Splits(train=train, test=test, classes=[str(c) for c in range(self.n_classes)])


def tensorboard(root: Path) -> pl.loggers.TensorBoardLogger:
    """The project's default logger. One per row, reused by its repetitions: a run creates its writer once, so a
    fresh writer per repetition would charge a whole run's set-up to a window of a few dozen steps."""
    return pl.loggers.TensorBoardLogger(str(root), name="tensorboard", version="", default_hp_metric=False)


def trainer(
    device: str, precision: str, callbacks: Sequence[pl.Callback], root: Path, logger: Any = None, **extra: Any
) -> pl.Trainer:
    """`conf/trainer/gpu.yaml`'s settings with the default TensorBoard logger (`logger=False`: none) at its default
    interval; no checkpoints or progress bar (`_setup.make_trainer`)."""
    logger = "none" if logger is False else logger if logger is not None else tensorboard(root)
    every = extra.pop("log_every_n_steps", 10)
    return make_trainer(device, precision, callbacks, logger, every, root, **extra)


def project_module(s: dict[str, Any], defense: str, overrides: Sequence[str] = (), compile: bool = False):
    cfg = compose_config("cifar10", defense, [f"model.width={s['width']}", *s["model"], *overrides])
    return build_run(cfg, 10, seed=0, channels_last=s["channels_last"], compile=compile).to(s["device"]), cfg


def project_fit(
    s: dict[str, Any], module: Any, data: ImageDataModule, warmup: int, callbacks=(), logger: Any = None, **extra
) -> dict:
    """One `trainer.fit` epoch; the window runs from batch `warmup` to the epoch's end (validation included)."""
    window = StepWindow(warmup, s["device"])
    with tempfile.TemporaryDirectory(prefix="gpu-") as root:
        t = trainer(s["device"], s["precision"], [*callbacks, window], Path(root), logger, **extra)
        total, _ = timed(lambda: t.fit(module, datamodule=data), s["device"])
    return {"wall": window.clock.wall, "cpu": window.clock.cpu, "fit_total_s": total, "last_loss": window.last_loss}


def plain_fit(s: dict[str, Any], net, opt, images: Tensor, labels: Tensor, warmup: int, steps: int, **adv) -> dict:
    plain.train_epoch(net, opt, images, labels, s["batch_size"], steps=warmup, **adv)
    clock = Clock(s["device"])
    clock.start()
    loss = plain.train_epoch(net, opt, images, labels, s["batch_size"], steps=steps, **adv)
    last = float(loss)  # the one read-back
    clock.stop()
    return {"wall": clock.wall, "cpu": clock.cpu, "last_loss": last}


def synthetic_uint8(n: int, classes: int = 10, seed: int = 0) -> tuple[Tensor, Tensor]:
    """`n` random CIFAR-size uint8 images and labels: the same draws for a seed on both sides of a comparison."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return images, torch.randint(0, classes, (n,), generator=g)


def device_data(s: dict[str, Any], n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """What the plain loop holds: `synthetic_uint8`'s images and labels, on the GPU."""
    images, labels = synthetic_uint8(n, seed=seed)
    return images.to(s["device"]), labels.to(s["device"])


def project_test(s: dict[str, Any], module: Any, cfg: Any, images: Tensor, labels: Tensor) -> dict[str, Any]:
    """`trainer.test` with the real `RobustnessVsSNR` callback over float batches already on the GPU; one untimed
    batch first (the window opens at batch 1)."""
    callback = build_callback(cfg.callbacks.robustness, log_figure=False)
    b = s["eval_batch"]
    batches = Batches([(images[i : i + b].float() / 255, labels[i : i + b]) for i in range(0, len(labels), b)])
    batches = Batches([batches[0], *batches.batches])
    window = StepWindow(1, s["device"])
    with tempfile.TemporaryDirectory(prefix="gpu-") as root:
        t = trainer(s["device"], s["precision"], [callback, window], Path(root))
        t.test(module, dataloaders=batches, verbose=False)
    summary = callback.results()["robustness"]["test"]
    acc = {a: v["acc"] for a, v in summary["attacks"].items()}
    return {"wall": window.clock.wall, "clean_acc": summary["clean_acc"], "acc": acc}


def plain_test(s: dict[str, Any], net, images: Tensor, labels: Tensor, levels: Sequence[float]) -> dict[str, Any]:
    b = s["eval_batch"]
    plain.report_attacks(net, images[:b], labels[:b], levels, b, steps=s["pgd_steps"])  # the same untimed batch
    clock = Clock(s["device"])
    clock.start()
    correct = plain.report_attacks(net, images, labels, levels, b, steps=s["pgd_steps"])
    acc = (correct.float() / len(labels)).tolist()
    clock.stop()
    return {"wall": clock.wall, "acc": {"fgsm": acc[0], "pgd": acc[1]}}


def profile_top(fn: Callable[[], Any], device: str, steps: int, rows: int = 12) -> dict[str, Any]:
    """`torch.profiler` over `fn()` (a fit or loop of `steps` training steps): the device kernels that took the most
    time, and the kernels' total busy time and launches per step (op-level rows and annotation ranges such as
    Lightning's `Optimizer.step#...`, which span other kernels, are left out so nothing is counted twice)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.device(device).type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with profile(activities=activities) as prof:
        fn()
    if cuda:
        kernels = [
            e
            for e in prof.key_averages()
            if e.device_type == DeviceType.CUDA and "#" not in e.key and not e.key.startswith("ProfilerStep")
        ]
        time_of = lambda e: e.self_device_time_total  # noqa: E731
    else:
        kernels = [e for e in prof.key_averages() if e.key.startswith("aten::")]
        time_of = lambda e: e.self_cpu_time_total  # noqa: E731
    busy = sum(time_of(e) for e in kernels) or 1.0
    top = sorted(kernels, key=time_of, reverse=True)[:rows]
    return {
        "busy_ms_per_step": busy / 1e3 / steps,
        "launches_per_step": sum(e.count for e in kernels) / steps,
        "top": [
            {"name": e.key[:100], "ms_per_step": time_of(e) / 1e3 / steps, "share": time_of(e) / busy, "calls": e.count}
            for e in top
        ],
    }


def sync_sites(fn: Callable[[], Any], device: str, frames: int = 5) -> dict[str, Any]:
    """Every operation in `fn()` that made the host wait for the GPU (`torch.cuda.set_sync_debug_mode`), counted by
    the Python call site that asked for it: a per-step site is a stall the plain loop does not have."""
    import collections
    import traceback
    import warnings

    if torch.device(device).type != "cuda":
        return {"total": None, "sites": []}
    sites: collections.Counter[str] = collections.Counter()

    def record(message, category, filename, lineno, file=None, line=None) -> None:
        if "synchroniz" in str(message):
            stack = traceback.extract_stack()[:-1]
            names = [f"{f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno} {f.name}" for f in stack[-frames:]]
            sites[" <- ".join(reversed(names))] += 1

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return {"total": sum(sites.values()), "sites": sites.most_common(10)}
