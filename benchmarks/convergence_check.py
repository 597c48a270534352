"""Does the honesty check `not_converged` predict what more steps break? The default digits job, then its tested
weights evaluated again with `steps` times more PGD steps; among the images each attack left robust at each level,
the share the longer attack breaks, for the images the check flagged (still closing in) and for the others.

    python -m benchmarks.convergence_check --run RUN_DIR --out FILE [--steps 50] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from adv_smooth.robustness.records import Records


def compare(short: Records, long: Records) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for name, rec in short.attacks.items():
        if rec.improving is None or name not in long.attacks:
            continue
        other = long.attacks[name]
        for i, level in enumerate(rec.levels):
            robust = (rec.adv_correct[i] == 1) & short.clean
            flagged = robust & (rec.improving[i] == 1)
            broken_later = other.adv_correct[other.levels.index(level)] == 0
            out.setdefault(name, {})[f"{level:g}"] = {
                "robust": int(robust.sum()),
                "flagged": int(flagged.sum()),
                "flagged_broken_by_longer": int((flagged & broken_later).sum()),
                "unflagged_broken_by_longer": int((robust & ~flagged & broken_later).sum()),
            }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convergence_check", description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--accelerator", default="gpu")
    args = parser.parse_args(argv)
    results = json.loads((args.run / "results.json").read_text())
    ckpt = results.get("tested_checkpoint") or str(args.run / "checkpoints" / "last.ckpt")
    again = args.run.parent / f"{args.run.name}_steps{args.steps}"
    command = [sys.executable, "-m", "adv_smooth.evaluate", f"ckpt={ckpt}", f"trainer.accelerator={args.accelerator}"]
    iterative = [a for a in ("pgd", "pgd_l2") if a in results["config"]["eval"]["attacks"]]  # the default preset's
    command += [f"eval.attacks.{a}.steps={args.steps}" for a in iterative]
    subprocess.run([*command, f"hydra.run.dir={again}"], check=True)
    report = compare(Records.load(args.run / "per_image_test.npz"), Records.load(again / "per_image_test.npz"))
    args.out.write_text(json.dumps({"steps": args.steps, "run": str(args.run), "attacks": report}, indent=2) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
