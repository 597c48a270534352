"""The figures this round's issues need from a GPU, in one command (one device call): the default job's spread over
seeds, the certified sandwich on the whole digits test split, and eval=autoattack beside AutoAttack's own code.

    python -m benchmarks.gpu_evidence --out DIR           # on the GPU machine (trainer=gpu)
    python -m benchmarks.gpu_evidence --smoke --out DIR   # tiny sizes on the CPU: the script runs end to end

1. The default digits job (`python -m adv_smooth trainer=gpu seed=S`) for seeds 0, 1, 2: test accuracy, best epoch
   and the worst case at each SNR level, and its wall time: the band the docs quote.
2. `defense=gaussian` trained the same way, then `python -m adv_smooth.evaluate ... eval=certified` on the whole
   test split: certified lower bound, PGD on the smoothed classifier, the base network's worst case, the
   certificate check's count, the wall time and forward passes; `python -m adv_smooth.report` on it (bounds.png).
3. `python -m benchmarks.autoattack` on the seed-0 default network, L-inf 8/255 and L2 0.5, whole test split.
Writes DIR/gpu_evidence.json (every number), DIR/bounds.png and DIR/gpu_evidence.log; the runs stay in DIR/runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SMOKE = [
    "trainer=cpu",
    "model.width=8",
    "model.blocks=[1,1]",
    "trainer.max_epochs=1",
    "eval.test_subset=20",
    "eval.val_subset=0",
    "trainer.enable_progress_bar=false",
]
SMOKE_CERTIFY = ["eval.certify.n0=8", "eval.certify.n=32", "eval.certify.check_steps=1", "eval.certify.check_draws=2"]


def _run(args: list[str], log: list[str]) -> tuple[int, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    log += [
        f"$ python {' '.join(args)}  ({wall:.1f} s, exit {done.returncode})",
        done.stdout[-4000:],
        done.stderr[-4000:],
    ]
    return done.returncode, wall


def _results(run: Path) -> dict[str, Any]:
    path = run / "results.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _curve(results: dict[str, Any]) -> dict[str, Any]:
    test = (results.get("robustness") or {}).get("test") or {}
    return {
        "test_acc": (results.get("metrics") or {}).get("test/acc"),
        "best_epoch": results.get("best_epoch"),
        "worst": (test.get("worst") or {}).get("acc"),
        "honesty": [w.get("check") for w in (results.get("honesty") or {}).get("warnings", [])],
        "wall_time_s": results.get("wall_time_s"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_evidence", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    out, runs = args.out, args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    base = SMOKE if args.smoke else ["trainer=gpu"]
    log: list[str] = []
    evidence: dict[str, Any] = {"smoke": args.smoke, "default_job": {}, "certified": {}, "autoattack": {}}

    for seed in range(args.seeds if not args.smoke else 1):  # 1. the default job's spread over seeds
        run = runs / f"default_s{seed}"
        code, wall = _run(["-m", "adv_smooth", *base, f"seed={seed}", f"hydra.run.dir={run}"], log)
        evidence["default_job"][seed] = {"exit": code, "command_wall_s": wall, **_curve(_results(run))}

    gauss, cert = runs / "gauss", runs / "gauss_cert"  # 2. the sandwich on the whole test split
    code, wall = _run(["-m", "adv_smooth", *base, "defense=gaussian", f"hydra.run.dir={gauss}"], log)
    evidence["certified"]["train"] = {"exit": code, "command_wall_s": wall, **_curve(_results(gauss))}
    evaluate = ["-m", "adv_smooth.evaluate", f"ckpt={gauss / 'checkpoints' / 'last.ckpt'}", "eval=certified"]
    device = ["trainer.accelerator=cpu", "eval.test_subset=20"] if args.smoke else ["trainer.accelerator=gpu"]
    evaluate += [*device, *(SMOKE_CERTIFY if args.smoke else []), f"hydra.run.dir={cert}"]
    code, wall = _run(evaluate, log)
    certified = ((_results(cert).get("robustness") or {}).get("test") or {}).get("certified") or {}
    evidence["certified"]["evaluate"] = {
        "exit": code,
        "command_wall_s": wall,
        **{k: certified.get(k) for k in ("acc", "empirical_acc", "smoothed_clean_acc", "abstain", "check")},
        **{k: certified.get(k) for k in ("images", "forward_passes", "sigma", "n0", "n", "alpha", "violations")},
        "base_network": _curve(_results(cert)),
    }
    _run(["-m", "adv_smooth.report", str(cert), "--out", str(runs / "report")], log)
    if (runs / "report" / "bounds.png").is_file():
        shutil.copy(runs / "report" / "bounds.png", out / "bounds.png")

    for norm in ("linf", "l2"):  # 3. eval=autoattack beside AutoAttack's own code
        target = runs / f"autoattack_{norm}.json"
        smoke = ["--smoke"] if args.smoke else ["--run", str(runs / "default_s0")]
        code, wall = _run(["-m", "benchmarks.autoattack", *smoke, "--norm", norm, "--out", str(target)], log)
        evidence["autoattack"][norm] = json.loads(target.read_text()) if target.is_file() else {"exit": code}

    (out / "gpu_evidence.json").write_text(json.dumps(evidence, indent=2, default=str) + "\n")
    (out / "gpu_evidence.log").write_text("\n".join(log) + "\n")
    print(json.dumps(evidence, indent=1, default=str)[:6000])


if __name__ == "__main__":
    main()
