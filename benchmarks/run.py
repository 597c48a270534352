"""Whole runs: `python -m adv_smooth` against a plain PyTorch loop doing the same training and final evaluation.

    python -m benchmarks.run [--quick] [--reps N] [--out benchmarks/results/run.json]

Two jobs, each run both ways as a fresh subprocess, so the ratio counts everything a user waits for:
interpreter and imports, config composition, data decoding, training, validation, checkpoints, logging and the
final test evaluation (and the plain side pays its own imports and decoding):

* `default`: the default job, `python -m adv_smooth` (digits, 8 epochs, `eval=default`);
* `folder`: `dataset=folder` on a generated 32x32 RGB ImageFolder of PNGs (class-coloured noise, so training
  learns something), width 16, augmentation on.

The plain side is `benchmarks/plain_run.py`, whose settings (data, network, optimizer, schedule, attacks,
levels, test images) are read off the same composed config, so the two cannot drift apart. `--quick` shortens
both jobs (fewer epochs and images, 64 test images) and keeps their configuration otherwise. Repetitions are
interleaved (`_timing.interleaved`); ratios are per repetition, then summarized (median, spread).

Beside them: the start-up cost (`benchmarks/startup.py`: imports, composition, data), and the first-run decode
time of Tiny ImageNet per 10,000 JPEGs (a generated tree in the official layout, `TinyImageNetDataModule`;
the second run reads the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from adv_smooth.run_record import read
from benchmarks import _timing
from benchmarks.run_data import make_folder, make_tiny_imagenet, time_tiny_imagenet

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "run.json"
TARGET = 1.10  # whole-run ratio, default configuration (issue 15)
FULL = {"default_epochs": 8, "folder_epochs": 15, "folder_train": 3000, "folder_test": 600, "test_images": None}
QUICK = {"default_epochs": 3, "folder_epochs": 3, "folder_train": 1200, "folder_test": 300, "test_images": 64}


def job_overrides(job: str, size: dict[str, Any], root: Path) -> list[str]:
    """The command-line overrides of one job (quick sizes only shorten it)."""
    out = (
        [] if job == "default" else ["dataset=folder", f"dataset.root={root}", "model.width=16", "dataset.augment=true"]
    )
    epochs = size["default_epochs" if job == "default" else "folder_epochs"]
    if job == "folder" or epochs != FULL["default_epochs"]:
        out.append(f"trainer.max_epochs={epochs}")
    if size["test_images"]:
        out += [f"dataset.eval_batch_size={size['test_images']}", "+trainer.limit_test_batches=1"]
    return out


def compose_run_config(overrides: list[str]) -> Any:
    """The config `python -m adv_smooth <overrides>` runs (`conf/`, composed as the entry point does)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from adv_smooth.app.preflight.command_line import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("config", overrides=overrides)


def plain_spec(overrides: list[str], test_images: int | None) -> dict[str, Any]:
    """The plain loop's settings, read off the project's config composed with the same overrides."""
    from omegaconf import OmegaConf

    from adv_smooth.lightning.schedules import resolve_milestones

    cfg = compose_run_config(overrides)
    dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
    kind = {"DigitsDataModule": "digits", "FolderDataModule": "folder"}[dataset.pop("_target_").rsplit(".", 1)[1]]
    model = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "_target_"}
    epochs = int(cfg.trainer.max_epochs)
    attacks = {
        label: {"class": a.pop("_target_").rsplit(".", 1)[1], "kwargs": a}
        for label, a in OmegaConf.to_container(cfg.eval.attacks, resolve=True).items()
    }
    o = cfg.optim
    return {
        "seed": int(cfg.seed),
        "dataset": {"kind": kind, "kwargs": dataset},
        "model": model,
        "optim": {
            "lr": o.lr,
            "momentum": o.momentum,
            "weight_decay": o.weight_decay,
            "gamma": o.gamma,
            "milestones": resolve_milestones(list(o.milestones), epochs),
        },
        "epochs": epochs,
        "attacks": attacks,
        "levels": list(cfg.eval.snr_levels),
        "cascade": bool(cfg.eval.cascade),
        "sanity_snr_db": cfg.eval.sanity_snr_db,
        "test_images": test_images,
    }


def timed_process(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Wall and CPU seconds (the child's, all threads) of one subprocess; its last stdout line; fails loudly."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return {"wall_s": wall, "cpu_s": cpu, "report": json.loads(lines[-1]) if lines else None}


def runners(size: dict[str, Any], work: Path, env: dict[str, str]) -> dict[str, Any]:
    """One callable per (job, path) and per start-up measurement, each a fresh subprocess."""
    folder = make_folder(work / "folder", size["folder_train"], size["folder_test"])
    out: dict[str, Any] = {}
    counter = iter(range(10**6))
    for job in ("default", "folder"):
        overrides = job_overrides(job, size, folder)
        spec_path = work / f"{job}_spec.json"
        spec_path.write_text(json.dumps(plain_spec(overrides, size["test_images"])))

        def project(overrides=overrides, job=job) -> dict[str, Any]:
            run_dir = work / "runs" / f"{job}-{next(counter)}"
            result = timed_process([sys.executable, "-m", "adv_smooth", *overrides, f"hydra.run.dir={run_dir}"], env)
            record = read(run_dir)
            result["report"] = {"test_acc": record.metrics.get("test/acc"), "in_run_s": record.wall_time_s}
            shutil.rmtree(run_dir, ignore_errors=True)
            return result

        out[f"{job}/project"] = project
        out[f"{job}/plain"] = lambda spec_path=spec_path: timed_process(
            [sys.executable, "-m", "benchmarks.plain_run", str(spec_path)], env
        )
        out[f"{job}/startup"] = lambda overrides=overrides: timed_process(
            [sys.executable, "-m", "benchmarks.startup", *overrides], env
        )
    return out


def summarize(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    jobs: dict[str, Any] = {}
    for job in ("default", "folder"):
        project, plain, startup = raw[f"{job}/project"], raw[f"{job}/plain"], raw[f"{job}/startup"]
        wall = [r["wall_s"] for r in project], [r["wall_s"] for r in plain]
        cpu = [r["cpu_s"] for r in project], [r["cpu_s"] for r in plain]
        jobs[job] = {
            "ratio_wall": _timing.paired_ratios(*wall),
            "ratio_cpu": _timing.paired_ratios(*cpu),
            "project_wall_s": _timing.summarize(wall[0]),
            "plain_wall_s": _timing.summarize(wall[1]),
            "project_in_run_s": _timing.summarize([r["report"]["in_run_s"] for r in project]),
            "test_acc": {
                "project": [r["report"]["test_acc"] for r in project],
                "plain": [r["report"]["test_acc"] for r in plain],
            },
            "plain_phases_s": {
                k: _timing.summarize([r["report"][k] for r in plain])
                for k in ("imports_s", "data_s", "train_s", "test_s")
            },
            "startup_s": {
                "process": _timing.summarize([r["wall_s"] for r in startup]),
                **{
                    k: _timing.summarize([r["report"][k] for r in startup])
                    for k in ("imports_s", "compose_s", "data_s")
                },
            },
        }
        jobs[job]["status"] = _timing.target_status(jobs[job]["ratio_wall"]["median"], TARGET)
    return jobs


def run(quick: bool, reps: int, threads: int | None = None, tiny_per_class: int | None = None) -> dict[str, Any]:
    size = QUICK if quick else FULL
    env = {**os.environ, "PYTHONPATH": str(REPO), "ADV_SMOOTH_DATA": os.environ.get("ADV_SMOOTH_DATA", "data")}
    if threads:  # both sides alike; one thread holds up better on a shared, oversubscribed CPU
        env["OMP_NUM_THREADS"] = str(threads)
    load_before = _timing.load_average()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_run_") as tmp:
        work = Path(tmp)
        raw = _timing.interleaved(reps, runners(size, work, env))
        tiny_root = make_tiny_imagenet(work / "tiny", tiny_per_class or (4 if quick else 20))
        tiny = [time_tiny_imagenet(tiny_root) for _ in range(reps)]
    jpegs = tiny[0]["jpegs"]
    return {
        "benchmark": "run",
        "settings": {
            "quick": quick,
            "reps": reps,
            "threads": threads or "torch default",
            **size,
            "target_ratio": TARGET,
        },
        "machine": _timing.machine_info("cpu"),
        "load_average_1min_before_after": [load_before, _timing.load_average()],
        "seconds": round(time.perf_counter() - start, 1),
        "jobs": summarize(raw),
        "tiny_imagenet": {
            "jpegs": jpegs,
            "first_run_s_per_10k": _timing.summarize([t["first_s"] * 10_000 / jpegs for t in tiny]),
            "cached_s_per_10k": _timing.summarize([t["cached_s"] * 10_000 / jpegs for t in tiny]),
        },
        "raw": raw,
    }


def format_report(result: dict[str, Any]) -> str:
    rows = [
        ["job", "project s", "plain s", "ratio (spread)", "target", "start-up s: process / imports / compose / data"]
    ]
    for job, j in result["jobs"].items():
        s = j["startup_s"]
        rows.append(
            [
                job,
                f"{j['project_wall_s']['median']:.1f}",
                f"{j['plain_wall_s']['median']:.1f}",
                f"{j['ratio_wall']['median']:.3f} ({j['ratio_wall']['spread_pct']:.0f} %)",
                f"<= {TARGET} {j['status']}",
                " / ".join(f"{s[k]['median']:.2f}" for k in ("process", "imports_s", "compose_s", "data_s")),
            ]
        )
    tiny = result["tiny_imagenet"]
    return (
        _timing.format_table(rows)
        + f"\nTiny ImageNet decode, first run: {tiny['first_run_s_per_10k']['median']:.1f} s per 10,000 JPEGs "
        + f"(cached: {tiny['cached_s_per_10k']['median']:.2f} s; {tiny['jpegs']} JPEGs timed)"
        + f"\nload average before/after: {result['load_average_1min_before_after']}, {result['seconds']} s in all"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short jobs (3 epochs, 64 test images), 2 repetitions")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default 3, quick 2)")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every run, both sides (default: unset)")
    parser.add_argument("--out", type=Path, default=OUT)
    a = parser.parse_args(argv)
    result = run(a.quick, a.reps or (2 if a.quick else 3), a.threads)
    _timing.publish(format_report(result), a.out, result)


if __name__ == "__main__":
    main()
