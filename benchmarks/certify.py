"""Certification throughput: the tool's CERTIFY against a plain loop doing the same sampling (issue 29, item 5).

Both run Cohen, Rosenfeld & Kolter (2019)'s CERTIFY (n0 selection draws, n estimation draws, Clopper-Pearson at
alpha) on the same network and images, interleaved:

* `tool`: `adv_smooth.robustness.certify.Certifier`, batched over the images and the draws (`batch` noisy images
  a forward pass, the draws of several images sharing one);
* `plain`: the paper's reference loop (github.com/locuslab/smoothing, core.py): image by image, noise in batches
  of `batch` copies of that one image, counts by bincount on the host, the same Clopper-Pearson bound.

Throughput is images x draws per second (n0 + n draws an image), medians over repetitions with their spread; the
process's CPU seconds too. The two draw different noise, so their certificates agree in distribution only: the
certified accuracy at radius 0 and the mean radius of each are reported side by side as a check that both did the
same work.

The network: the attack tests' CNN on scikit-learn's 8x8 digits, trained for a few seconds with Gaussian noise
augmentation at sigma (the base classifier smoothing needs).

    python -m benchmarks.certify [--quick] [--device cuda] [--out benchmarks/results/certify.json]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from adv_smooth.robustness.certify import ABSTAIN, Certifier, clopper_pearson_lower
from benchmarks import _timing
from benchmarks._timing import format_table, interleaved, load_average, machine_info, paired_ratios, summarize, sync

DEFAULT_OUT = Path("benchmarks/results/certify.json")


def noisy_digits_model(n: int, sigma: float, device: str) -> tuple[nn.Module, Tensor, Tensor]:
    """The digits CNN trained on noisy images (each epoch's noise fresh), and `n` held-out test images."""
    from adv_smooth.models.digits_cnn import DigitsCNN, digits_split

    x, y, perm, generator = digits_split(0)
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = perm[:1400]
    for _ in range(15):
        for rows in train[torch.randperm(len(train), generator=generator)].split(100):
            inputs = x[rows] + sigma * torch.randn_like(x[rows])
            loss = nn.functional.cross_entropy(model(inputs), y[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    test = perm[1400 : 1400 + n]
    return model.eval().to(device), x[test].to(device), y[test].to(device)


@torch.no_grad()
def plain_certify(model: nn.Module, x: Tensor, sigma: float, n0: int, n: int, alpha: float, batch: int) -> np.ndarray:
    """Cohen et al.'s loop, one image at a time: (N, 2) of (prediction or -1, radius)."""
    out = []
    for image in x:
        counts0 = _sample(model, image, sigma, n0, batch)
        top = int(counts0.argmax())
        hits = int(_sample(model, image, sigma, n, batch)[top])
        p_lower = float(clopper_pearson_lower(np.array([hits]), n, alpha)[0])
        if p_lower < 0.5:
            out.append((ABSTAIN, 0.0))
        else:
            out.append((top, sigma * float(torch.special.ndtri(torch.tensor(p_lower, dtype=torch.float64)))))
    return np.array(out)


def _sample(model: nn.Module, image: Tensor, sigma: float, num: int, batch: int) -> np.ndarray:
    counts = np.zeros(10, dtype=np.int64)
    remaining = num
    while remaining > 0:
        size = min(batch, remaining)
        remaining -= size
        copies = image.unsqueeze(0).repeat(size, 1, 1, 1)
        pred = model(copies + sigma * torch.randn_like(copies)).argmax(dim=1)
        counts += np.bincount(pred.cpu().numpy(), minlength=10)
    return counts


def compare(
    model: nn.Module, x: Tensor, y: Tensor, sigma: float, n0: int, n: int, batch: int, reps: int, alpha: float = 0.001
) -> dict[str, Any]:
    """Interleaved timings of both, their throughput and their certificates' agreement."""
    device = x.device
    certifier = Certifier(sigma=sigma, n0=n0, n=n, alpha=alpha, batch=batch)
    labels = y.cpu().numpy()

    def run(fn) -> dict[str, Any]:
        sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        sync(device)
        return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "result": result}

    def tool() -> np.ndarray:
        cert = certifier.certify(model, x)
        return np.stack([cert.prediction, cert.radius], axis=1)

    runs = interleaved(
        reps,
        {"tool": lambda: run(tool), "plain": lambda: run(lambda: plain_certify(model, x, sigma, n0, n, alpha, batch))},
    )
    samples = len(x) * (n0 + n)
    out: dict[str, Any] = {"images": len(x), "n0": n0, "n": n, "sigma": sigma, "batch": batch, "alpha": alpha}
    for name, results in runs.items():
        last = results[-1]["result"]
        right = last[:, 0] == labels
        out[name] = {
            "wall_s": summarize([r["wall_s"] for r in results]),
            "cpu_s": summarize([r["cpu_s"] for r in results]),
            "samples_per_s": summarize([samples / r["wall_s"] for r in results]),
            "certified_acc_radius0": float(right.mean()),
            "mean_radius_right": float(last[right, 1].mean()) if right.any() else math.nan,
        }
    out["speedup"] = paired_ratios([r["wall_s"] for r in runs["plain"]], [r["wall_s"] for r in runs["tool"]])
    return out


def format_report(result: dict[str, Any]) -> str:
    rows = [["variant", "images x draws / s", "spread %", "wall s", "cert. acc (r=0)", "mean radius (right)"]]
    for name in ("tool", "plain"):
        r = result[name]
        rows.append(
            [
                name,
                f"{r['samples_per_s']['median']:,.0f}",
                f"{r['samples_per_s']['spread_pct']:.1f}",
                f"{r['wall_s']['median']:.2f}",
                f"{100 * r['certified_acc_radius0']:.1f} %",
                f"{r['mean_radius_right']:.3f}",
            ]
        )
    head = f"{result['images']} images, n0={result['n0']}, n={result['n']}, sigma={result['sigma']}"
    head += f", batch={result['batch']}"
    return f"{head}\n{format_table(rows)}\nspeedup (plain wall / tool wall): {result['speedup']['median']:.1f}x"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 images, n=200, 1 repetition")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.n, args.n0, args.reps = 20, 200, 20, 1
    before = load_average()
    model, x, y = noisy_digits_model(args.images, args.sigma, args.device)
    result = compare(model, x, y, args.sigma, args.n0, args.n, args.batch, args.reps)
    result["machine"] = {**machine_info(args.device), "load_before": before, "load_after": load_average()}
    return _timing.publish(format_report(result), args.out, result)


if __name__ == "__main__":
    main()
