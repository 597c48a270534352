"""The default job's recipe at reduced size over several seeds on this machine: the band a fresh clone's run lands in.

    python -m benchmarks.default_band [--seeds 0 1 2] [--out benchmarks/results/default_band_cpu.json]

The recipe is the default job's (digits, PreAct ResNet-18 preset, SGD, the default evaluation) with the sizes that
let CI run it: width 8, 3 epochs, no validation probe, the test split's first 100 images at 33 and 20 dB. Records
per seed the clean test accuracy and the worst case at each level, and the band (min, max) over the seeds;
tests/test_default_band.py runs seed 0 and checks it lands in the committed band (widened by `MARGIN`: another CPU
may break a tie differently).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "default_band_cpu.json"
REDUCED = [
    "trainer=cpu",
    "model.width=8",
    "trainer.max_epochs=3",
    "eval.val_subset=0",
    "eval.test_subset=100",
    "eval.snr_levels=[33,20]",
    "trainer.enable_progress_bar=false",
    "logger=csv",
]
MARGIN = 0.05  # five points either side of the band over seeds: a different tie, not a different recipe


def run_job(overrides: list[str], where: Path, threads: int | None = None) -> dict[str, Any]:
    """One `python -m adv_smooth` run (on `threads` intra-op threads if given); its clean test accuracy and worst
    case per level from results.json, and its wall time."""
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    done = subprocess.run(
        [sys.executable, "-m", "adv_smooth", *overrides, f"hydra.run.dir={where}"],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    results = json.loads((where / "results.json").read_text())
    worst = results["robustness"]["test"]["worst"]["acc"]
    return {"clean": results["metrics"]["test/acc"], "worst": worst, "wall_s": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.default_band", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {str(s): run_job([*REDUCED, f"seed={s}"], Path(tmp) / f"s{s}") for s in args.seeds}
    keys = ["clean", *sorted(next(iter(runs.values()))["worst"])]

    def values(key: str) -> list[float]:
        return [r["clean"] if key == "clean" else r["worst"][key] for r in runs.values()]

    band = {key: [min(values(key)), max(values(key))] for key in keys}
    result = {
        "recipe": REDUCED,
        "seeds": args.seeds,
        "runs": runs,
        "band": band,
        "margin": MARGIN,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(band, indent=1))


if __name__ == "__main__":
    main()
