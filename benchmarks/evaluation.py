"""Evaluation throughput (images/s): the default `eval` at four SNRs, under Lightning and in a plain loop.

    python -m benchmarks.evaluation --quick        # CPU, about two minutes on 2 idle cores
    python -m benchmarks.evaluation                # CPU, more batches and repetitions
    python -m benchmarks.evaluation --device cuda --width 64 --batch-size 512 --precision bf16-mixed \\
        --channels-last --compile                  # GPU
    python -m benchmarks.evaluation --versus-autoattack [--quick]   # eval=strong vs AutoAttack (benchmarks/ensemble.py)

What is compared, on the same synthetic batches of real shapes and the same weights:

* lightning: `trainer.test(module)` with the project's `RobustnessVsSNR` callback built from the composed
  config (`callbacks.robustness`: the default `eval` group's attacks and checks, `eval.snr_levels` = 50,
  45, 40, 33 dB), i.e. `RobustClassifier.test_step` (clean forward, loss, accuracy) and, per batch, the
  callback's `evaluate_batch`; the figure is off (`log_figure=False`);
* plain: a loop doing the same per batch: the clean forward, loss and accuracy, then
  `adv_smooth.robustness.batch.evaluate_batch`, summing the same counts the callback computes.

The random PGD starts are seeded identically for both, so their accuracies must agree: checked
(`accuracy_abs_diff`). With `--precision bf16-mixed` both the test step and the callback's attacks run under
autocast (the callback opens the trainer's precision context); the plain loop does the same.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor

from adv_smooth.app.build import build_attacks, build_callback
from adv_smooth.robustness.attack_configs import check_levels
from adv_smooth.robustness.batch import evaluate_batch, weak_to_strong
from benchmarks._setup import (
    DATASETS,
    RunSettings,
    autocast,
    build_run,
    common_arguments,
    common_settings,
    compose_config,
    make_trainer,
    synthetic_batches,
)
from benchmarks._timing import (
    Clock,
    StepWindow,
    format_table,
    interleaved,
    load_average,
    machine_info,
    paired_overhead,
    publish,
    quiet_lightning,
    summarize,
    target_status,
    timed,
)

DEFAULT_OUT = Path("benchmarks/results/evaluation.json")
ENSEMBLE_OUT = Path("benchmarks/results/ensemble.json")
GPU_COMMAND = (
    "python -m benchmarks.evaluation --device cuda --width 64 --batch-size 512 --precision bf16-mixed "
    "--channels-last --compile"
)
#: The issue's target for evaluation is Lightning's overhead; GPU limits are not restated here.
TARGETS = {"cpu": 0.05, "cuda": None}


@dataclass
class Settings(RunSettings):
    """Everything a run depends on; stored in the JSON next to the numbers."""

    batches: int = 3
    classes: int = 10


def _config(s: Settings):
    return compose_config(DATASETS[s.classes][3], "vanilla", [f"model.width={s.width}", *s.model_overrides])


def plain_evaluate(
    module: Any, batches: Sequence[tuple[Tensor, Tensor]], eval_cfg: Any, warmup: int, device: str, precision: str
) -> dict[str, Any]:
    """`test_step` + the callback's per-batch attack work by hand; counts summed on the device, read once."""
    net = module.net.eval()
    attacks = build_attacks(OmegaConf.to_container(eval_cfg.attacks, resolve=True))
    levels = weak_to_strong(check_levels(list(eval_cfg.snr_levels)))
    cascade, sanity = bool(eval_cfg.get("cascade", False)), eval_cfg.get("sanity_snr_db")
    amp = autocast(device, precision)
    clean = torch.zeros((), device=device)
    correct: dict[str, Tensor] = {}
    n = 0
    clock = Clock(device)
    for b, (x, y) in enumerate(batches):
        if b == warmup:
            clock.start()
        with torch.no_grad(), amp:  # test_step: forward, loss, accuracy
            logits = net(x)
            F.cross_entropy(logits, y)
            clean += (logits.argmax(1) == y).sum()
        n += len(y)
        with amp:  # the callback's `_accumulate`
            out = evaluate_batch(net, x, y, attacks, levels, cascade, sanity)
        for name, outcome in out["attacks"].items():
            correct[name] = correct.get(name, 0) + (outcome["adv_correct"] == 1).sum(dim=1)
    acc = {a: (c / n).tolist() for a, c in correct.items()}  # the one read-back, at the end
    clock.stop()
    return {"wall": clock.wall, "cpu": clock.cpu, "clean_acc": float(clean) / n, "acc": acc}


def lightning_evaluate(
    module: Any,
    batches: Sequence[tuple[Tensor, Tensor]],
    cfg: Any,
    warmup: int,
    device: str,
    precision: str,
    logger: str,
) -> dict[str, Any]:
    """`trainer.test` with the real `RobustnessVsSNR` callback; clocked from batch `warmup` to `on_test_end`."""
    callback = build_callback(cfg.callbacks.robustness, log_figure=False)
    window = StepWindow(warmup, device)
    with tempfile.TemporaryDirectory(prefix="bench-") as root:
        trainer = make_trainer(device, precision, [callback, window], logger, 10, Path(root))
        total, _ = timed(lambda: trainer.test(module, dataloaders=batches, verbose=False), device)
    summary = callback.results()["robustness"]["test"]
    acc = {a: list(v["acc"].values()) for a, v in summary["attacks"].items()}
    return {
        "wall": window.clock.wall,
        "cpu": window.clock.cpu,
        "clean_acc": summary["clean_acc"],
        "acc": acc,
        "test_total_s": total,
    }


def run(s: Settings) -> dict[str, Any]:
    """Both paths, repetitions interleaved; returns what the JSON holds."""
    quiet_lightning()
    load_before = load_average()
    cfg = _config(s)
    batches = synthetic_batches(s.warmup + s.batches, s.batch_size, s.classes, s.device, s.seed)

    def runner(path: str):
        def go() -> dict[str, Any]:
            module = build_run(cfg, s.classes, s.seed, s.channels_last, s.compile).to(s.device)
            torch.manual_seed(s.seed + 1)  # the same PGD random starts on both paths
            if path == "plain":
                return plain_evaluate(module, batches, cfg.eval, s.warmup, s.device, s.precision)
            return lightning_evaluate(module, batches, cfg, s.warmup, s.device, s.precision, s.logger)

        return go

    raw = interleaved(s.reps, {"plain": runner("plain"), "lightning": runner("lightning")})
    images = s.batch_size * s.batches
    paths = {}
    for p, runs in raw.items():
        paths[p] = {
            "images_per_s": summarize([images / r["wall"] for r in runs]),
            "wall_s": summarize([r["wall"] for r in runs]),
            "cpu_s": summarize([r["cpu"] for r in runs]),
            "clean_acc": runs[-1]["clean_acc"],
            "acc": runs[-1]["acc"],
        }
    paths["lightning"]["test_total_s"] = summarize([r["test_total_s"] for r in raw["lightning"]])
    overhead = paired_overhead([r["wall"] for r in raw["lightning"]], [r["wall"] for r in raw["plain"]])
    diffs = [
        abs(a - b)
        for name in paths["plain"]["acc"]
        for a, b in zip(paths["plain"]["acc"][name], paths["lightning"]["acc"][name])
    ]
    diffs.append(abs(paths["plain"]["clean_acc"] - paths["lightning"]["clean_acc"]))
    targets = []
    for dev, limit in TARGETS.items():
        value = overhead["median"] if dev == torch.device(s.device).type else None
        targets.append(
            {
                "device": dev,
                "target": "lightning overhead",
                "limit": limit,
                "value": value,
                "status": target_status(value, limit),
            }
        )
    return {
        "benchmark": "evaluation",
        "settings": vars(s).copy(),
        "attacks": OmegaConf.to_container(cfg.eval.attacks, resolve=True),
        "snr_levels_db": sorted((float(x) for x in cfg.eval.snr_levels), reverse=True),
        "machine": machine_info(s.device),
        "paths": paths,
        "lightning_overhead": overhead,
        "accuracy_abs_diff": max(diffs),
        "targets": targets,
        "gpu_command": GPU_COMMAND,
        "load_average_1min_before_after": [load_before, load_average()],
    }


def format_report(r: dict[str, Any]) -> str:
    s = r["settings"]
    rows = [("path", "images/s", "spread", "CPU-s/image", "Lightning vs plain", "clean acc")]
    for p in ("plain", "lightning"):
        d = r["paths"][p]
        rows.append(
            (
                p,
                f"{d['images_per_s']['median']:.2f}",
                f"{d['images_per_s']['spread_pct']:.0f}%",
                f"{d['cpu_s']['median'] / (s['batch_size'] * s['batches']):.4f}",
                f"{100 * r['lightning_overhead']['median']:+.1f}%" if p == "lightning" else "",
                f"{d['clean_acc']:.3f}",
            )
        )
    trows = [("target", "device", "limit", "measured", "status")]
    for t in r["targets"]:
        limit = "-" if t["limit"] is None else f"<= {100 * t['limit']:.1f}%"
        value = "not measured" if t["value"] is None else f"{100 * t['value']:+.1f}%"
        trows.append((t["target"], t["device"], limit, value, t["status"]))
    attacks = ", ".join(r["attacks"])
    load = r["load_average_1min_before_after"]
    return "\n".join(
        [
            f"evaluation throughput ({attacks} at {r['snr_levels_db']} "
            f"dB): width {s['width']}, {s['classes']} classes, "
            f"batch {s['batch_size']}, {s['batches']} timed batches "
            f"after {s['warmup']} warm-up, {s['reps']} interleaved "
            f"reps, {s['device']}, {s['precision']}, channels_last={s['channels_last']}, compile={s['compile']}",
            format_table(rows),
            f"same computation: max |accuracy difference| plain vs lightning = {r['accuracy_abs_diff']:.2e}",
            "",
            format_table(trows),
            "",
            f"threads {r['machine']['threads']} on {r['machine']['cpu_count']} CPUs, load avg before/after "
            f"{load[0]:.1f}/{load[1]:.1f}; GPU: {GPU_COMMAND}",
        ]
    )


def settings_from_args(argv: Sequence[str] | None = None) -> tuple[Settings, Path, int | None]:
    """The settings, the output file, and the repetitions of `--versus-autoattack` (None: not asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser, "fewer batches/reps: about two minutes on 2 idle cores", "none", DEFAULT_OUT)
    parser.add_argument("--batch-size", type=int, help="default 128 (quick 48) on CPU, 512 on cuda")
    parser.add_argument("--batches", type=int, help="timed batches per run (default 3, quick 2)")
    parser.add_argument("--warmup", type=int, help="untimed batches first (default 1; 2 with --compile)")
    parser.add_argument("--classes", type=int, default=10, choices=sorted(DATASETS))
    parser.add_argument(
        "--versus-autoattack",
        action="store_true",
        help="instead: eval=strong against pyautoattack's standard AutoAttack (benchmarks/ensemble.py)",
    )
    a = parser.parse_args(argv)
    gpu = torch.device(a.device).type == "cuda"
    s = Settings(
        **common_settings(a),
        batch_size=a.batch_size or (512 if gpu else 48 if a.quick else 128),
        batches=a.batches or (2 if a.quick else 3),
        warmup=a.warmup if a.warmup is not None else (2 if a.compile else 1),
        classes=a.classes,
    )
    return s, a.out, ((1 if a.quick else 3) if a.versus_autoattack else None)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    s, out, versus_reps = settings_from_args(argv)
    if versus_reps:
        from benchmarks import ensemble

        result = ensemble.run(reps=versus_reps, seed=s.seed)
        out = ENSEMBLE_OUT if out == DEFAULT_OUT else out
        return publish(ensemble.format_report(result), out, result)
    result = run(s)
    return publish(format_report(result), out, result)


if __name__ == "__main__":
    main()
