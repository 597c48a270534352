"""Correctness on the GPU, for `python -m benchmarks.gpu`: the real entry points in fresh processes.

* The default digits job on `trainer=gpu` (bf16, channels_last and the data on the GPU by the `auto` rules) must reach
  the CPU's test accuracy within a point.
* Its checkpoint evaluated with fp32 and with bf16 attacks (`trainer.precision`): bf16 must break at least as many
  images (a precision that hid gradients would show up as fewer).
* The same checkpoint evaluated on the CPU (`trainer=cpu`, no GPU visible): a checkpoint trained on a GPU must load
  and score there; its clean accuracy must equal the GPU's fp32 one.
* `eval=strong`'s L-inf cascade against pyautoattack's standard AutoAttack (benchmarks/ensemble.py) on the GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from adv_smooth.run_record import read


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} exited {proc.returncode}: {proc.stderr[-800:]}")
    return time.perf_counter() - start, proc.stdout


def _robustness(results: dict[str, Any]) -> dict[str, Any]:
    test = results["robustness"]["test"]
    return {"clean_acc": test["clean_acc"], "acc": {a: v["acc"] for a, v in test["attacks"].items()}}


def digits_on_gpu(
    work: Path,
    cpu_test_acc: float,
    keep: Path | None,
    trainer: str = "gpu",
    extra: tuple[str, ...] = (),
    eval_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Train the default job on the GPU, evaluate its checkpoint in fp32, bf16 and on the CPU; compare.
    (`trainer="cpu"`, `extra` training and `eval_args` evaluation overrides: the same steps on a CPU, to check the
    script itself.)"""
    run = work / "digits_gpu"
    wall, _ = _run(["-m", "adv_smooth", f"trainer={trainer}", *extra, f"hydra.run.dir={run}"], timeout=400)
    results = read(run).to_dict()
    ckpt = results["best_checkpoint"] or str(run / "checkpoints" / "last.ckpt")
    cpu_dir = work / "eval_cpu"
    cpu = subprocess.Popen(  # on the host's cores while the GPU evaluations run
        [
            sys.executable,
            "-m",
            "adv_smooth.evaluate",
            f"ckpt={ckpt}",
            "trainer.accelerator=cpu",
            *eval_args,
            f"hydra.run.dir={cpu_dir}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    evals = {}
    for precision in ("32-true", "bf16-mixed"):
        out = work / f"eval_{precision}"
        t, _ = _run(
            [
                "-m",
                "adv_smooth.evaluate",
                f"ckpt={ckpt}",
                f"trainer.accelerator={trainer}",
                *eval_args,
                f"trainer.precision={precision}",
                f"hydra.run.dir={out}",
            ]
        )
        evals[precision] = {"wall_s": t, **_robustness(read(out).to_dict())}
    _, err = cpu.communicate(timeout=400)
    if cpu.returncode != 0:
        raise RuntimeError(f"the CPU evaluation exited {cpu.returncode}: {err[-800:]}")
    evals["cpu"] = _robustness(read(cpu_dir).to_dict())
    fp32, bf16 = evals["32-true"]["acc"], evals["bf16-mixed"]["acc"]
    n_test = results.get("split_sizes", {}).get("test") or 360
    more_robust_in_bf16 = {  # attack@level where bf16 left more images robust than fp32 did (in images)
        f"{a}@{lv}": round((bf16[a][lv] - fp32[a][lv]) * n_test)
        for a in fp32
        for lv in fp32[a]
        if bf16[a][lv] > fp32[a][lv] + 1e-9
    }
    if keep is not None:  # the run's config, record and checkpoint: evaluate it again anywhere
        (keep / ".hydra").mkdir(parents=True, exist_ok=True)
        (keep / "checkpoints").mkdir(exist_ok=True)
        shutil.copy(run / ".hydra" / "config.yaml", keep / ".hydra" / "config.yaml")
        shutil.copy(run / "results.json", keep / "results.json")
        shutil.copy(ckpt, keep / "checkpoints" / Path(ckpt).name)
    test_acc = results["metrics"].get("test/acc")
    return {
        "wall_s": wall,
        "run_wall_time_s": results.get("wall_time_s"),
        "test_acc_gpu": test_acc,
        "test_acc_cpu_readme": cpu_test_acc,
        "evaluations": evals,
        "bf16_more_robust_than_fp32_images": more_robust_in_bf16,
        "cpu_clean_equals_gpu_fp32": abs(evals["cpu"]["clean_acc"] - evals["32-true"]["clean_acc"]) < 1e-9,
        "ratios": {"digits_gpu_minus_cpu_points": 100 * abs(test_acc - cpu_test_acc)},
    }


def strong_vs_autoattack(reps: int, device: str) -> dict[str, Any]:
    from benchmarks import ensemble

    r = ensemble.run(reps=reps, device=device)
    r["ratios"] = {
        "strong_over_autoattack_time": r["time_ratio_ours_over_autoattack"]["median"],
        "strong_minus_autoattack_points": 100 * r["robust_acc_abs_diff"],
    }
    return r


def digits_variants(work: Path, variants: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The default digits job on `trainer=gpu` with one setting changed at a time (precision, data residency):
    which of them moves the test accuracy away from the CPU's."""
    out: dict[str, Any] = {}
    for name, overrides in variants.items():
        run = work / f"digits_{name}"
        wall, _ = _run(["-m", "adv_smooth", "trainer=gpu", *overrides, f"hydra.run.dir={run}"], timeout=200)
        r = read(run).to_dict()
        out[name] = {
            "overrides": list(overrides),
            "test_acc": r["metrics"].get("test/acc"),
            "best_val_acc": r.get("best_val_acc"),
            "best_epoch": r.get("best_epoch"),
            "wall_s": wall,
        }
    return out
