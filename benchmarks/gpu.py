"""`python -m benchmarks.gpu`: on a CUDA machine, every number the README's GPU rows need, in one command, one JSON.

* Training images/s through the project's path (`trainer.fit` of the real `RobustClassifier`, `lightning_fit`
  from benchmarks/training_paths.py) at batch 512, bf16-mixed + channels_last, width 64: vanilla, adversarial
  (FGSM on half of each batch), smoothness (m = 2) and Parseval, then vanilla and adversarial again with
  `torch.compile`; the defenses' overheads over vanilla come from the same run.
* Evaluation of 10,000 synthetic 32x32 images through `trainer.test` with the real `RobustnessVsSNR` callback
  (`lightning_evaluate` from benchmarks/evaluation.py): the default curve (`eval=default`: FGSM, PGD-10 L-inf and
  PGD-10 L2 at every level, the sanity checks) and the strong ensemble (`eval=strong`, AutoAttack's cascade). One
  untimed batch first (cuDNN autotuning, compilation), then the clock runs over exactly the 10,000 images.

Parts run cheapest first; once `--budget-s` (default 480 s: the 8 minutes) is spent, the remaining parts are
recorded as skipped rather than run. `--smoke` runs the same code on the CPU in seconds (tiny width, batch,
steps, images and attack iterations): the test suite runs it. Imports stay within torch, torchvision,
pytorch-lightning, torchmetrics, tensorboard, hydra-core and omegaconf (a GPU image without this project's
other dependencies; `pip install --no-deps hydra-core omegaconf antlr4-python3-runtime==4.9.3` there).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from adv_smooth.utils.io import write_json_atomic
from benchmarks._setup import Batches, build_run, compose_config, synthetic_batches
from benchmarks._timing import format_table, machine_info, quiet_lightning
from benchmarks.evaluation import lightning_evaluate
from benchmarks.training_paths import lightning_fit

DEFAULT_OUT = Path("benchmarks/results/gpu.json")
COMMAND = "python -m benchmarks.gpu"
TRAINING = (  # (row, defense preset, overrides, compile)
    ("vanilla", "vanilla", (), False),
    ("adv", "adv", ("defense.fraction=0.5",), False),
    ("smooth_m2", "smooth", ("defense.m=2",), False),
    ("parseval", "parseval", (), False),
    ("vanilla+compile", "vanilla", (), True),
    ("adv+compile", "adv", ("defense.fraction=0.5",), True),
)
EVALUATION = (("curve_default", "default"), ("strong", "strong"))
SMOKE_EVAL = ["eval.snr_levels=[40]", "eval.sanity_snr_db=null"]  # --smoke: one level, tiny iteration counts
SMOKE_ATTACKS = {
    "default": [*SMOKE_EVAL, "eval.attacks.pgd.steps=2", "eval.attacks.pgd_l2.steps=2"],
    "strong": [
        *SMOKE_EVAL,
        *(f"eval.attacks.{a}_{n}.steps=2" for a in ("apgd_ce", "apgd_t") for n in ("l2", "linf")),
        *(f"eval.attacks.apgd_t_{n}.targets=1" for n in ("l2", "linf")),
        "eval.attacks.square_l2.queries=3",
        "eval.attacks.square_linf.queries=3",
    ],
}


def settings(smoke: bool, device: str) -> dict[str, Any]:
    """The real sizes on a GPU; on `--smoke`, the same code at sizes that take seconds on a CPU."""
    if smoke:
        return {
            "device": device,
            "width": 4,
            "batch_size": 8,
            "steps": 3,
            "warmup": 1,
            "images": 16,
            "eval_batch": 8,
            "precision": "32-true",  # bf16 convolutions on a CPU without AMX are slower than fp32, not a smoke test
            "channels_last": True,
            "model": ["model.blocks=[1,1]"],
            "smoke": True,
        }
    return {
        "device": device,
        "width": 64,
        "batch_size": 512,
        "steps": 40,
        "warmup": 8,
        "images": 10_000,
        "eval_batch": 1000,
        "precision": "bf16-mixed",
        "channels_last": True,
        "model": [],  # PreAct ResNet-18, the study's network
        "smoke": False,
    }


def train_row(s: dict[str, Any], defense: str, overrides: Sequence[str], compile: bool) -> dict[str, Any]:
    cfg = compose_config("cifar10", defense, [f"model.width={s['width']}", *s["model"], *overrides])
    module = build_run(cfg, 10, seed=0, channels_last=s["channels_last"], compile=compile and not s["smoke"])
    batches = synthetic_batches(s["steps"], s["batch_size"], 10, s["device"])
    out = lightning_fit(module, batches, s["warmup"], s["device"], s["precision"], "none", 50)
    images = (s["steps"] - s["warmup"]) * s["batch_size"]
    return {
        "images_per_s": images / out["wall"],
        "wall_s": out["wall"],
        "last_loss": out["last_loss"],
        "compile": compile and not s["smoke"],
    }


def eval_row(s: dict[str, Any], preset: str) -> dict[str, Any]:
    smoke = SMOKE_ATTACKS[preset] if s["smoke"] else []
    cfg = compose_config("cifar10", "vanilla", [f"model.width={s['width']}", *s["model"], f"eval={preset}", *smoke])
    module = build_run(cfg, 10, seed=0, channels_last=s["channels_last"])
    full = synthetic_batches(s["images"] // s["eval_batch"], s["eval_batch"], 10, s["device"], seed=1)
    warm = synthetic_batches(1, s["eval_batch"], 10, s["device"], seed=2)
    out = lightning_evaluate(module, Batches([*warm, *full]), cfg, 1, s["device"], s["precision"], "none")
    return {
        "images": s["images"],
        "wall_s": out["wall"],
        "images_per_s": s["images"] / out["wall"],
        "clean_acc": out["clean_acc"],
        "attacks": sorted(out["acc"]),
        "levels": list(cfg.eval.snr_levels),
    }


def run(s: dict[str, Any], budget_s: float) -> dict[str, Any]:
    """Every part in order, each timed on its own; parts past the budget are skipped, and said so."""
    quiet_lightning()
    start = time.perf_counter()
    parts: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
        *(("training", row, lambda d=d, o=o, c=c: train_row(s, d, o, c)) for row, d, o, c in TRAINING[:4]),
        *(("evaluation", row, lambda p=p: eval_row(s, p)) for row, p in EVALUATION[:1]),
        *(("training", row, lambda d=d, o=o, c=c: train_row(s, d, o, c)) for row, d, o, c in TRAINING[4:]),
        *(("evaluation", row, lambda p=p: eval_row(s, p)) for row, p in EVALUATION[1:]),
    ]
    results: dict[str, Any] = {"training": {}, "evaluation": {}, "skipped": [], "failed": {}}
    for group, row, measure in parts:
        if time.perf_counter() - start > budget_s:
            results["skipped"].append(row)
            continue
        t0 = time.perf_counter()
        try:
            results[group][row] = {**measure(), "part_s": round(time.perf_counter() - t0, 2)}
        except Exception as e:  # noqa: BLE001 - one broken path must not hide the other numbers: it is recorded
            results["failed"][row] = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
    train = results["training"]
    if "vanilla" in train:  # same steps and batch: the ratio of wall times is the ratio of step times
        base = train["vanilla"]["wall_s"]
        results["overhead_vs_vanilla"] = {r: v["wall_s"] / base - 1 for r, v in train.items() if r != "vanilla"}
    results["total_s"] = round(time.perf_counter() - start, 2)
    return results


def format_report(r: dict[str, Any]) -> str:
    rows = [["part", "images/s", "wall s", "vs vanilla"]]
    overhead = r.get("overhead_vs_vanilla", {})
    for row, v in r["training"].items():
        rows.append(
            [
                f"train {row}",
                f"{v['images_per_s']:,.0f}",
                f"{v['wall_s']:.2f}",
                f"{overhead[row]:+.1%}" if row in overhead else "",
            ]
        )
    for row, v in r["evaluation"].items():
        rows.append([f"eval {row} ({v['images']:,} images)", f"{v['images_per_s']:,.0f}", f"{v['wall_s']:.2f}", ""])
    skipped = f"\nskipped (budget spent): {', '.join(r['skipped'])}" if r["skipped"] else ""
    skipped += "".join(f"\nFAILED {row}: {why}" for row, why in r["failed"].items())
    return format_table(rows) + f"\ntotal {r['total_s']} s{skipped}"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the same code on the CPU at tiny sizes (seconds)")
    parser.add_argument("--device", help="default: cuda (cpu with --smoke)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="skip the remaining parts after this long")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = parser.parse_args(argv)
    device = a.device or ("cpu" if a.smoke else "cuda")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here: run it on a GPU machine, or pass --smoke (CPU, tiny sizes)")
    s = settings(a.smoke, device)
    results = {"settings": s, "machine": machine_info(device), **run(s, a.budget_s)}
    write_json_atomic(a.out, results)
    print(format_report(results))
    print(f"wrote {a.out}")
    return results


if __name__ == "__main__":
    main()
