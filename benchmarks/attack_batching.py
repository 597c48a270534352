"""Batched FGSM evaluation vs the report's one-image-at-a-time loop, in the same process.

The report's evaluation script attacked one image at a time, once per SNR level. The framework attacks
a whole batch at once and, because FGSM's gradient at the clean image does not depend on the budget,
computes it once for all levels. This benchmark measures what that buys, side by side:

* batched: `robust_predictions(model, x_batch, y_batch, FGSM(), levels)` over all N images;
* bs-1 loop: for each image: a clean forward, then per level an FGSM perturbation of that single image
  (`FGSM().perturb` on a batch of 1) and a forward on it. It runs on a subset (it is slow) and is
  compared in images per second.

Repetitions are interleaved (batched, loop, batched, loop, ...) so machine noise hits both alike, and the
median is reported. The model is a PreActResNet-18 layout at width 16 on 32x32x3 inputs with random
weights and data (speed does not depend on them); it is in eval mode, so per-image results must agree
between the two paths, which is checked.

    python -m benchmarks.attack_batching [--quick] [--out benchmarks/results/attack_batching.json]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from adv_smooth.attacks import FGSM
from adv_smooth.models import PreActResNet
from adv_smooth.robustness.batch import robust_predictions
from benchmarks._timing import format_table, load_average, machine_info, publish, timed

LEVELS = (50.0, 45.0, 40.0, 33.0)
DEFAULT_OUT = Path("benchmarks/results/attack_batching.json")


def batched(model: nn.Module, x: Tensor, y: Tensor, batch_size: int, levels: Sequence[float]) -> Tensor:
    """Correctness (N, 1 + levels) with whole batches and the gradient shared across levels."""
    attack = FGSM()
    rows = []
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        out = robust_predictions(model, xb, yb, attack, levels)
        rows.append(torch.stack([out["clean"]] + [out["correct"][s] for s in levels], dim=1))
    return torch.cat(rows)


def one_at_a_time(model: nn.Module, x: Tensor, y: Tensor, levels: Sequence[float]) -> Tensor:
    """Correctness (N, 1 + levels), the report's way: one image, one level, one gradient at a time."""
    attack = FGSM()
    rows = []
    for i in range(x.shape[0]):
        xi, yi = x[i : i + 1], y[i : i + 1]
        with torch.no_grad():
            row = [model(xi).argmax(1) == yi]
        for level in levels:
            x_adv = attack.perturb(model, xi, yi, level)
            with torch.no_grad():
                row.append(model(x_adv).argmax(1) == yi)
        rows.append(torch.cat(row))
    return torch.stack(rows)


def run(n: int, subset: int, reps: int, batch_size: int, seed: int = 0) -> dict:
    load_before = load_average()
    torch.manual_seed(seed)
    model = PreActResNet(num_classes=10, in_channels=3, width=16).eval()
    x = torch.rand(n, 3, 32, 32)
    y = torch.randint(0, 10, (n,))
    xs, ys = x[:subset], y[:subset]

    batched(model, x[:batch_size], y[:batch_size], batch_size, LEVELS)  # warm-up both paths
    one_at_a_time(model, xs[:2], ys[:2], LEVELS)

    batched_ips, loop_ips = [], []
    batched_s, loop_s = [], []
    agreement = None
    for _ in range(reps):
        t, full = timed(lambda: batched(model, x, y, batch_size, LEVELS))
        batched_s.append(t)
        batched_ips.append(n / t)
        t, small = timed(lambda: one_at_a_time(model, xs, ys, LEVELS))
        loop_s.append(t)
        loop_ips.append(subset / t)
        agreement = (full[:subset] == small).float().mean().item()

    b, lp = statistics.median(batched_ips), statistics.median(loop_ips)
    return {
        "model": "PreActResNet(width=16, blocks=(2,2,2,2)), 32x32x3, random weights and data, eval mode",
        "attack": "FGSM sign, snr budget, pixel space",
        "levels_db": list(LEVELS),
        "n_images_batched": n,
        "n_images_loop": subset,
        "batch_size": batch_size,
        "repetitions": reps,
        "batched_seconds": batched_s,
        "loop_seconds": loop_s,
        "batched_images_per_s_median": b,
        "loop_images_per_s_median": lp,
        "speedup_median": b / lp,
        "per_image_agreement": agreement,
        **machine_info("cpu"),
        "load_average_1min_before_after": [load_before, load_average()],
    }


def _table(r: dict) -> str:
    rows = [
        ("path", "images", "median images/s", "median s/run"),
        (
            f"batched (bs={r['batch_size']}, grad shared)",
            str(r["n_images_batched"]),
            f"{r['batched_images_per_s_median']:.1f}",
            f"{statistics.median(r['batched_seconds']):.2f}",
        ),
        (
            "bs-1 loop, per level",
            str(r["n_images_loop"]),
            f"{r['loop_images_per_s_median']:.2f}",
            f"{statistics.median(r['loop_seconds']):.2f}",
        ),
    ]
    lines = [format_table(rows)]
    load = r["load_average_1min_before_after"]
    lines.append(
        f"speedup (median images/s): {r['speedup_median']:.1f}x   levels {r['levels_db']} dB   "
        f"threads {r['threads']}   per-image agreement {r['per_image_agreement']:.4f}   "
        f"load avg before/after {load[0]:.1f}/{load[1]:.1f}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute on 2 CPU cores")
    parser.add_argument("--n", type=int, help="images for the batched path (default 1024, quick 256)")
    parser.add_argument("--subset", type=int, help="images for the bs-1 loop (default 64, quick 16)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default 5, quick 3)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads for both paths (default: torch's). On a shared, oversubscribed machine "
        "multi-threaded batch-1 calls can stall on descheduled threads; compare with --threads 1",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    n = args.n or (256 if args.quick else 1024)
    subset = min(args.subset or (16 if args.quick else 64), n)
    reps = args.reps or (3 if args.quick else 5)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(n=n, subset=subset, reps=reps, batch_size=args.batch_size)
    result["quick"] = bool(args.quick)
    return publish(_table(result), args.out, result)


if __name__ == "__main__":
    main()
