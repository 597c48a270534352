"""What each training default costs or buys, at a short and at the default length, over seeds.

    python -m benchmarks.defaults_effect [--seeds 0 1 2] [--epochs 3 8] [--jobs 2] [--out FILE]

A plain loop's recipe and the project's defaults differ in three places (issue 28, item 8): the learning-rate
schedule (the study's x0.01 drop after 60 % of the run, `optim.schedule=step`, against a cosine annealing over
the run, `optim.schedule=cosine`), the validation carve (a tenth of the training images held out and the
best-on-validation weights tested, against every image trained on and the last weights tested), and the random
crop's padding (zeros, the study's, against the mirrored image, `dataset.pad_mode=reflect`, which this benchmark
made the default: the study's presets pin zeros). Each variant
changes one of them from the base recipe, `plain` changes all three; every variant runs with the same seeds,
so the effect of a default is read as the paired difference per seed (variant minus base), mean and spread.

The base is the default job with augmentation on (the crop is where padding matters) at CPU size: digits,
PreAct ResNet-18 width 8, batch 64, the test split's first 200 images, the default attacks at 33 and 20 dB.
Records clean accuracy and the worst case per level from each run's results.json. `--jobs N` runs N at a time, each
on one intra-op thread (the figures are then one thread's, on every run alike).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.default_band import run_job

RESULTS = Path(__file__).parent / "results" / "defaults_effect.json"
BASE = [
    "trainer=cpu",
    "model.width=8",
    "dataset.augment=true",
    "dataset.pad_mode=zeros",  # the study's padding, the default when this was measured (reflect is now)
    "eval.val_subset=0",
    "eval.test_subset=200",
    "eval.snr_levels=[33,20]",
    "trainer.enable_progress_bar=false",
    "logger=csv",
]
VARIANTS: dict[str, list[str]] = {
    "base": [],
    "cosine": ["optim.schedule=cosine"],
    "no_val_carve": ["dataset.val_fraction=0", "eval.checkpoint=last"],
    "reflect": ["dataset.pad_mode=reflect"],
    "plain": ["optim.schedule=cosine", "dataset.val_fraction=0", "eval.checkpoint=last", "dataset.pad_mode=reflect"],
}


def run_one(overrides: list[str], where: Path, threads: int | None = None) -> dict[str, Any]:
    """One run of the base recipe with `overrides`: clean accuracy, worst case per level, wall seconds (flat)."""
    run = run_job([*BASE, *overrides], where, threads)
    return {"clean": run["clean"], **run["worst"], "wall_s": round(run["wall_s"], 1)}


def effects(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per variant and figure: the mean and sample standard deviation over seeds of (variant - base), in points."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    base = runs["base"]
    for name, by_seed in runs.items():
        if name == "base":
            continue
        figures = [k for k in base[next(iter(base))] if k != "wall_s"]
        out[name] = {}
        for key in figures:
            diffs = [100 * (by_seed[s][key] - base[s][key]) for s in base]
            spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
            out[name][key] = {"mean": round(statistics.fmean(diffs), 2), "sd": round(spread, 2)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.defaults_effect", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each on one thread when more than 1")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    names = ["base", *[v for v in args.variants if v != "base"]]
    cells = [(e, name, seed) for e in args.epochs for name in names for seed in args.seeds]
    threads = 1 if args.jobs > 1 else None
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:

        def one(cell: tuple[int, str, int]) -> dict[str, Any]:
            epochs, name, seed = cell
            overrides = [*VARIANTS[name], f"trainer.max_epochs={epochs}", f"seed={seed}"]
            return run_one(overrides, Path(tmp) / f"e{epochs}-{name}-s{seed}", threads)

        done = dict(zip(cells, pool.map(one, cells)))
    by_length: dict[str, Any] = {}
    for epochs in args.epochs:
        runs = {name: {str(seed): done[(epochs, name, seed)] for seed in args.seeds} for name in names}
        by_length[str(epochs)] = {"runs": runs, "effect_points": effects(runs)}
        print(f"{epochs} epochs:", json.dumps(by_length[str(epochs)]["effect_points"]), flush=True)
    result = {
        "recipe": BASE,
        "threads_per_run": threads,
        "variants": {name: VARIANTS[name] for name in ["base", *args.variants] if name in VARIANTS},
        "seeds": args.seeds,
        "epochs": by_length,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
