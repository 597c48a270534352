"""What attacking a snapshot ensemble costs: PGD on an ensemble of M members vs on one member, side by side.

An ensemble (`adv_smooth.models.ensemble.Ensemble`) runs every member on every forward and backward pass,
so a white-box attack step on M members should cost about M times one member's step. This benchmark
measures it: a 10-step L-inf PGD at 33 dB on the same images through one member and through ensembles of
M = 2, 3, 5 copies-with-different-weights of it (a PreActResNet-18 layout, random weights: speed does not
depend on them), repetitions interleaved, medians of per-repetition paired ratios over the single member.

    python -m benchmarks.snapshot_ensemble [--quick] [--out benchmarks/results/snapshot_ensemble.json]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from adv_smooth.attacks import PGD
from adv_smooth.models import PreActResNet
from adv_smooth.models.ensemble import Ensemble
from benchmarks import _timing
from benchmarks._timing import format_table, interleaved, load_average, machine_info, paired_ratios, summarize, timed

DEFAULT_OUT = Path("benchmarks/results/snapshot_ensemble.json")


def _member(seed: int, width: int) -> PreActResNet:
    torch.manual_seed(seed)
    return PreActResNet(num_classes=10, in_channels=3, width=width, blocks=(2, 2, 2, 2)).eval()


def run(members: Sequence[int], n: int, width: int, reps: int, steps: int = 10) -> dict:
    load_before = load_average()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    pool = [_member(seed, width) for seed in range(max(members))]
    models = {1: pool[0], **{m: Ensemble(pool[:m]) for m in members if m > 1}}

    def attack(model: torch.nn.Module):
        pgd = PGD(steps=steps, include_fgsm=False, generator=torch.Generator().manual_seed(1))
        return lambda: timed(lambda: pgd.perturb(model, x, y, 33.0))[0]

    seconds = interleaved(reps, {m: attack(model) for m, model in models.items()})
    result = {
        "n_images": n,
        "width": width,
        "pgd_steps": steps,
        "repetitions": reps,
        "cases": {
            str(m): {
                "members": m,
                "seconds": summarize(seconds[m]),
                "vs_one_member": paired_ratios(seconds[m], seconds[1]),
                "passes_per_attack_step": m,
            }
            for m in models
        },
        **machine_info("cpu"),
        "load_average_1min_before_after": [load_before, load_average()],
    }
    return result


def _table(r: dict) -> str:
    rows = [("members M", "median s (PGD-10)", "time / one member", "expected (M passes per step)")]
    for case in r["cases"].values():
        rows.append(
            (
                str(case["members"]),
                f"{case['seconds']['median']:.2f}",
                f"{case['vs_one_member']['median']:.2f}x (spread {case['vs_one_member']['spread_pct']:.0f} %)",
                f"{case['members']}x",
            )
        )
    load = r["load_average_1min_before_after"]
    note = f"{r['n_images']} images, width {r['width']}, threads {r['threads']}, load {load[0]:.1f}/{load[1]:.1f}"
    return format_table(rows) + "\n" + note


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 images, width 8, M = 2 and 3, 3 repetitions")
    parser.add_argument("--members", type=int, nargs="+", help="ensemble sizes (default 2 3 5, quick 2 3)")
    parser.add_argument("--n", type=int, help="images (default 256, quick 64)")
    parser.add_argument("--width", type=int, help="network width (default 16, quick 8)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default 5, quick 3)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (1: no stalls on a shared CPU)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    quick = args.quick
    torch.set_num_threads(args.threads)
    result = run(
        members=args.members or ([2, 3] if quick else [2, 3, 5]),
        n=args.n or (32 if quick else 256),
        width=args.width or (8 if quick else 16),
        reps=args.reps or (3 if quick else 5),
    )
    return _timing.publish(_table(result), args.out, result)


if __name__ == "__main__":
    main()
