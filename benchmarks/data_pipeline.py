"""Images per second served to the training step: this project's pipeline vs torchvision transforms.

    python -m benchmarks.data_pipeline [--quick] [--out benchmarks/results/data_pipeline.json]

Both sides start from the same synthetic CIFAR-sized uint8 images held in memory, so disk and JPEG
decoding are out of the picture and only the pipeline differs:

* ours: `ImageDataModule` (uint8 NCHW tensors, whole-batch `__getitems__`, no workers) plus its
  `on_after_batch_transfer` (float conversion + random crop with 4 px padding + flip, one vectorized
  op per batch). Normalization happens inside the model, so it is not a data-pipeline cost here.
* torchvision: a CIFAR10-like dataset returning PIL images through RandomCrop(32, padding=4),
  RandomHorizontalFlip, ToTensor, Normalize, in 2 DataLoader worker processes (persistent, warmed up).

Repetitions alternate between the two (so drifts in machine load hit both alike); the median of each
is reported with the ratio. Runs on CPU; a GPU would only widen the gap (ours augments on-device).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from adv_smooth.data.base import ImageDataModule, Splits
from benchmarks._timing import publish

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # any constants: cost, not accuracy


class InMemory(ImageDataModule):
    """The project's pipeline on given arrays (the loading step is what the benchmark skips)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        self._arrays = images, labels

    def load_splits(self) -> Splits:
        images, labels = self._arrays
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        y = torch.from_numpy(labels)
        return Splits(train=(x, y), test=(x[:1], y[:1]), classes=[str(i) for i in range(10)])


class PilArrays(Dataset):
    """What torchvision's CIFAR10 does per item: numpy HWC -> PIL image -> transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def _cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds consumed so far by these processes (all their threads); Linux only."""
    try:
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _worker_pids(loader: DataLoader) -> list[int]:
    iterator = getattr(loader, "_iterator", None)  # persistent workers live on the loader's iterator
    return [w.pid for w in getattr(iterator, "_workers", [])]


def _time(loader: DataLoader, batches: int, step) -> tuple[float, float | None]:
    """(images per wall second, images per CPU second) over `batches` batches handed to `step`.

    Wall time is what training sees; CPU time (this process + the loader's workers) is the cost,
    which stays meaningful when other jobs share the machine. Epochs are chained as needed.
    """
    served = 0
    pids = [os.getpid(), *_worker_pids(loader)]
    cpu0, start = _cpu_seconds(pids), time.perf_counter()
    while served < batches * loader.batch_size:
        for batch in loader:
            x, _ = step(batch)
            served += len(x)
            if served >= batches * loader.batch_size:
                break
    wall = time.perf_counter() - start
    cpu1 = _cpu_seconds(pids)
    per_cpu = served / (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None and cpu1 > cpu0 else None
    return served / wall, per_cpu


def run(n_images: int, batches: int, repeats: int, batch_size: int, workers: int, ours_batch_factor: int = 4) -> dict:
    """Measure both pipelines; ours runs `ours_batch_factor` x more batches (it is that much faster)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n_images).astype(np.int64)

    ours = InMemory(images, labels, batch_size=batch_size, val_fraction=0.0, augment=True, flip=True)
    ours.setup()
    ours_loader = ours.train_dataloader()  # no trainer yet: a CPU loader (with a GPU trainer the split is resident)
    ours.trainer = SimpleNamespace(training=True)  # on_after_batch_transfer augments only while training

    def ours_step(batch):
        return ours.on_after_batch_transfer(batch, 0)

    tv_transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    tv_loader = DataLoader(
        PilArrays(images, labels, tv_transform),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )

    def tv_step(batch):
        return batch

    # warm-up: worker start-up, allocator, first-call overheads are not the steady state
    _time(ours_loader, 3, ours_step)
    _time(tv_loader, 3, tv_step)

    runs: dict[str, list[tuple[float, float | None]]] = {"ours": [], "torchvision": []}
    for _ in range(repeats):  # interleaved, so load drifts hit both sides alike
        runs["ours"].append(_time(ours_loader, batches * ours_batch_factor, ours_step))
        runs["torchvision"].append(_time(tv_loader, batches, tv_step))

    def summary(name: str, pipeline: str) -> dict:
        wall = [r[0] for r in runs[name]]
        cpu = [r[1] for r in runs[name] if r[1] is not None]
        return {
            "images_per_s": statistics.median(wall),
            "images_per_cpu_s": statistics.median(cpu) if cpu else None,
            "runs_images_per_s": wall,
            "runs_images_per_cpu_s": cpu,
            "pipeline": pipeline,
        }

    ours_row = summary("ours", "uint8 tensors in memory + on_after_batch_transfer (float, crop pad 4, flip), 0 workers")
    tv_row = summary("torchvision", f"PIL dataset + RandomCrop(32, 4) + flip + ToTensor + Normalize, {workers} workers")
    cpu_ratio = None
    if ours_row["images_per_cpu_s"] and tv_row["images_per_cpu_s"]:
        cpu_ratio = ours_row["images_per_cpu_s"] / tv_row["images_per_cpu_s"]
    return {
        "ours": ours_row,
        "torchvision": tv_row,
        "ratio": ours_row["images_per_s"] / tv_row["images_per_s"],
        "ratio_per_cpu_s": cpu_ratio,
        "settings": {
            "images": n_images,
            "batch_size": batch_size,
            "batches_per_run": {"ours": batches * ours_batch_factor, "torchvision": batches},
            "repeats": repeats,
            "workers": workers,
            "device": "cpu",
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images/batches/repeats (under a minute)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/data_pipeline.json"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads of the main process (default 1: one core for ours vs one per torchvision worker)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_images, batches, repeats = (8192, 25, 3) if args.quick else (50000, 100, 5)
    result = run(n_images, batches, repeats, args.batch_size, args.workers)
    result["settings"]["quick"] = args.quick
    lines = [f"{'pipeline':<12} {'images/s':>10} {'images/CPU-s':>13}  runs (images/s)"]
    for name in ("ours", "torchvision"):
        row = result[name]
        per_cpu = f"{row['images_per_cpu_s']:,.0f}" if row["images_per_cpu_s"] else "n/a"
        runs = ", ".join(f"{r:,.0f}" for r in row["runs_images_per_s"])
        lines.append(f"{name:<12} {row['images_per_s']:>10,.0f} {per_cpu:>13}  {runs}")
    cpu_ratio = f"{result['ratio_per_cpu_s']:.1f}x" if result["ratio_per_cpu_s"] else "n/a"
    lines.append(
        f"ratio ours / torchvision: {result['ratio']:.1f}x per wall second, {cpu_ratio} per CPU second "
        f"(medians; batch {args.batch_size}, CPU, {args.threads} torch thread(s), "
        f"1-min load {result['settings']['load_average_1min']:.1f} on {os.cpu_count()} cores)"
    )
    return publish("\n".join(lines), args.out, result)


if __name__ == "__main__":
    main()
