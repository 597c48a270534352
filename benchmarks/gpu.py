"""`python -m benchmarks.gpu`: on one CUDA GPU, every number the README's GPU rows need, in one command, one JSON.

Each row is the project's own path beside a plain PyTorch loop written for speed (`benchmarks/plain_reference.py`),
repetitions interleaved, medians (`gpu_parts.py` says what each side runs, `gpu_rows.py` the rows):

* training images/s at width 64, 32x32, batch 512, bf16-mixed, channels_last, data on the GPU, crop + flip:
  vanilla (project and plain), FGSM adversarial training on half of each batch (both), smoothness (m = 2) and
  Parseval (project; their step time over vanilla's), then vanilla with `torch.compile` (both; the first call,
  compile included, is reported apart);
* evaluation of 10,000 CIFAR-size images: `eval=report` (FGSM + PGD-10 at 50/45/40/33 dB) against a plain batched
  attack loop doing the same passes, and `eval=default` alone;
* one whole epoch of 50,000 images (45,000 trained, 5,000 validated with the budgeted probe), start-up apart;
* correctness (`gpu_checks.py`): the default digits job on `trainer=gpu` against its CPU figure, bf16 against fp32
  attacks on its checkpoint, that checkpoint evaluated on the CPU; `eval=strong` against pyautoattack;
* for every missed target, a `torch.profiler` summary of the top kernels of that row.

Parts run most important first; once `--budget-s` (default 450 s) is spent, the rest are recorded as skipped.
`--smoke` runs the same code on the CPU at tiny sizes in seconds (the test suite runs it). Imports stay within what
the GPU image has plus hydra-core / omegaconf (`pip install --no-deps` their wheels there).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from adv_smooth.utils.io import write_json_atomic
from benchmarks import gpu_checks, gpu_rows
from benchmarks._timing import format_table, machine_info, publish, quiet_lightning

DEFAULT_OUT = Path("benchmarks/results/gpu.json")
COMMAND = "python -m benchmarks.gpu"
CPU_DIGITS_TEST_ACC = 0.9889  # README: the default job on the 2-core CPU development machine
TARGETS = {  # ratio or figure -> ("min" | "max", limit), from the issue
    "vanilla_vs_plain": ("min", 0.95),
    "vanilla_images_per_s": ("min", 40_000),
    "adv_images_per_s": ("min", 20_000),
    "smooth_m2_step_over_vanilla": ("max", 1.15),
    "parseval_step_over_vanilla": ("max", 1.10),
    "report_over_plain": ("max", 1.10),
    "report_wall_s": ("max", 10.0),
    "default_wall_s": ("max", 20.0),
    "epoch_over_plain": ("max", 1.15),
    "digits_gpu_minus_cpu_points": ("max", 1.0),
    "strong_over_autoattack_time": ("max", 1.0),
    "strong_minus_autoattack_points": ("max", 0.3),
}
DIAGNOSTICS = ("digits_variants", "graphs")
DIGITS_VARIANTS = {  # the GPU default job, one setting changed at a time
    "bf16_resident": (),
    "fp32_resident": ("trainer.precision=32-true",),
    "bf16_host_loader": ("dataset.on_device=false",),
    "fp32_host_loader_nchw": ("trainer.precision=32-true", "dataset.on_device=false", "perf.channels_last=false"),
}
PARTS = ("training", "evaluation", "epoch", "overhead", "digits_gpu", "strong_vs_autoattack", "training_compiled")
PROFILED = {  # target -> (part, runner) whose steps are profiled when the target is missed
    "vanilla_vs_plain": ("training", "vanilla"),
    "vanilla_images_per_s": ("training", "vanilla"),
    "adv_images_per_s": ("training", "adv"),
    "smooth_m2_step_over_vanilla": ("training", "smooth_m2"),
    "parseval_step_over_vanilla": ("training", "parseval"),
}


def settings(smoke: bool, device: str) -> dict[str, Any]:
    """The issue's sizes on a GPU; on `--smoke`, the same code at sizes that take seconds on a CPU."""
    real = {
        "device": device,
        "width": 64,
        "model": [],  # PreAct ResNet-18
        "batch_size": 512,
        "steps": 30,
        "warmup": 5,
        "reps": 3,
        "eval_images": 10_000,
        "eval_batch": 1000,
        "pgd_steps": 10,
        "epoch_images": 50_000,
        "precision": "bf16-mixed",
        "channels_last": True,
        "compile": True,
        "digits_job": True,
        "autoattack_reps": 1,
        "smoke": False,
    }
    if not smoke:
        return real
    return {
        **real,
        "width": 4,
        "model": ["model.blocks=[1,1]"],
        "batch_size": 8,
        "steps": 2,
        "warmup": 1,
        "reps": 2,
        "eval_images": 16,
        "eval_batch": 8,
        "pgd_steps": 2,
        "epoch_images": 64,
        "precision": "32-true",  # bf16 convolutions on a CPU without AMX are slower than fp32, not a smoke test
        "compile": False,
        "digits_job": False,
        "autoattack_reps": 0,
        "smoke": True,
    }


def check_targets(figures: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for name, (kind, limit) in TARGETS.items():
        value = figures.get(name)
        ok = None if value is None else (value >= limit if kind == "min" else value <= limit)
        status = "not measured" if ok is None else "pass" if ok else "MISSED"
        by = None if ok in (None, True) else (value / limit if kind == "max" else limit / value)
        out.append({"target": name, "kind": kind, "limit": limit, "value": value, "status": status, "missed_by": by})
    return out


def run(s: dict[str, Any], budget_s: float, keep: Path | None, partial: Path | None = None) -> dict[str, Any]:
    """Every part in order, each timed on its own; parts past the budget are skipped, and said so. After each part
    the results so far go to `partial`, so a run killed at its time limit still leaves its numbers."""
    quiet_lightning()
    start = time.perf_counter()
    results: dict[str, Any] = {"skipped": [], "failed": {}}
    state: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))

    def train() -> dict[str, Any]:
        out = gpu_rows.training(s)
        state["runners"], state["net"] = out.pop("_runners"), out.pop("_vanilla_state")
        out["images_per_s"] = {"vanilla": out["vanilla"]["images_per_s"], "adv": out["adv"]["images_per_s"]}
        return out

    def compiled() -> dict[str, Any]:
        out = gpu_rows.training(s, compiled=True)
        out.pop("_runners"), out.pop("_vanilla_state")
        return out

    part_list: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("training", train),
        ("evaluation", lambda: gpu_rows.evaluation(s, state.get("net"))),
        ("epoch", lambda: gpu_rows.epoch(s)),
        ("overhead", lambda: gpu_rows.overhead(s)),
    ]
    if s["digits_job"]:
        part_list.append(("digits_gpu", lambda: gpu_checks.digits_on_gpu(work, CPU_DIGITS_TEST_ACC, keep)))
    if s["autoattack_reps"]:
        part_list.append(("strong_vs_autoattack", lambda: gpu_checks.strong_vs_autoattack(1, s["device"])))
    if s["compile"]:
        part_list.append(("training_compiled", compiled))
    part_list += [  # diagnostics, run only when named in --parts
        ("digits_variants", lambda: gpu_checks.digits_variants(work, DIGITS_VARIANTS)),
        ("graphs", lambda: gpu_rows.graphs(s)),
    ]
    for name, measure in part_list:
        if name not in s["parts"]:
            continue
        if time.perf_counter() - start > budget_s:
            results["skipped"].append(name)
            continue
        t0 = time.perf_counter()
        try:
            results[name] = {**measure(), "part_s": round(time.perf_counter() - t0, 2)}
        except Exception as e:  # noqa: BLE001 - one broken path must not hide the other numbers: it is recorded
            results["failed"][name] = f"{type(e).__name__}: {' '.join(str(e).split())[:600]}"
        print(
            f"[{time.perf_counter() - start:6.1f} s] {name}: {'failed' if name in results['failed'] else 'done'}",
            flush=True,
        )
        if partial is not None:
            write_json_atomic(partial, {"settings": s, "partial": True, **results})
    figures = {k: v for part in results.values() if isinstance(part, dict) for k, v in part.get("ratios", {}).items()}
    if "training" in results:
        figures.update({f"{k}_images_per_s": v for k, v in results["training"]["images_per_s"].items()})
    results["targets"] = check_targets(figures)
    results["profiles"] = profiles(results["targets"], state, s, budget_s - (time.perf_counter() - start))
    results["total_s"] = round(time.perf_counter() - start, 2)
    return results


def profiles(targets: list[dict[str, Any]], state: dict[str, Any], s: dict[str, Any], left_s: float) -> dict:
    """The kernels of each training row behind a missed target, beside the plain loop's (one short fit each under
    `torch.profiler`: busy time and launches per step, the top kernels), time allowing."""
    from benchmarks.gpu_parts import profile_top

    out: dict[str, Any] = {}
    runners = state.get("runners", {})
    steps = s["warmup"] + s["steps"]
    for t in targets:
        _, row = PROFILED.get(t["target"], (None, None))
        if t["status"] != "MISSED" or row not in runners or row in out:
            continue
        if left_s < 20:
            out[row] = "skipped: the budget is spent"
            continue
        t0 = time.perf_counter()
        out[row] = profile_top(runners[row], s["device"], steps)
        if f"plain_{row}" in runners and f"plain_{row}" not in out:
            out[f"plain_{row}"] = profile_top(runners[f"plain_{row}"], s["device"], steps)
        left_s -= time.perf_counter() - t0
    return out


def format_report(r: dict[str, Any]) -> str:
    rows = [["target", "value", "limit", "status"]]
    for t in r["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:,.3f}" if t["value"] < 100 else f"{t['value']:,.0f}"
        rows.append([t["target"], value, f"{t['kind']} {t['limit']:,}", t["status"]])
    lines = [format_table(rows)]
    tr = r.get("training", {})
    for row in ("vanilla", "plain_vanilla", "adv", "plain_adv", "smooth_m2", "parseval"):
        if row in tr:
            lines.append(f"train {row:<14} {tr[row]['images_per_s']:>10,.0f} images/s")
    for row, v in r.get("training_compiled", {}).items():
        if isinstance(v, dict) and "images_per_s" in v:
            lines.append(f"train {row + '+compile':<14} {v['images_per_s']:>10,.0f} images/s")
    for row, v in r.get("evaluation", {}).items():
        if isinstance(v, dict) and "images_per_s" in v:
            lines.append(f"eval  {row:<14} {v['images_per_s']:>10,.0f} images/s")
    lines.append(f"skipped: {r['skipped']}" if r["skipped"] else "skipped: none")
    lines += [f"FAILED {row}: {why}" for row, why in r["failed"].items()]
    lines.append(f"total {r['total_s']} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the same code on the CPU at tiny sizes (seconds)")
    parser.add_argument("--device", help="default: cuda (cpu with --smoke)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="skip the remaining parts after this long")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--keep-run", type=Path, help="copy the digits run (config, record, checkpoint) here")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated, of {', '.join(PARTS + DIAGNOSTICS)} (default: the first {len(PARTS)})",
    )
    a = parser.parse_args(argv)
    device = a.device or ("cpu" if a.smoke else "cuda")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here: run it on a GPU machine, or pass --smoke (CPU, tiny sizes)")
    s = settings(a.smoke, device)
    s["parts"] = [p for p in a.parts.split(",") if p]
    unknown = sorted(set(s["parts"]) - set(PARTS + DIAGNOSTICS))
    if unknown:
        parser.error(f"--parts: unknown {', '.join(unknown)}; choose from {', '.join(PARTS + DIAGNOSTICS)}")
    partial = a.out.with_name(a.out.stem + ".partial.json")
    results = {
        "command": COMMAND,
        "settings": s,
        "machine": machine_info(device),
        **run(s, a.budget_s, a.keep_run, partial),
    }
    publish(format_report(results), a.out, results)
    partial.unlink(missing_ok=True)  # the whole run's file replaces what it saved job by job
    return results


if __name__ == "__main__":
    main()
