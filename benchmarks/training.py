"""Training throughput (images/s) of every defense, under Lightning and in a plain PyTorch loop, in one process.

    python -m benchmarks.training --quick          # CPU, about two minutes on 2 cores (10-class cases)
    python -m benchmarks.training                  # CPU, the full set (adds the 200-class cases, torch.compile)
    python -m benchmarks.training --device cuda --width 64 --batch-size 512 --precision bf16-mixed \\
        --channels-last --compile                  # GPU

What is compared, per case (defense preset x classes x fast path):

* lightning: the real `RobustClassifier` built by `adv_smooth.app.build.build_module` from the real Hydra presets
  (`dataset=cifar10` or `tiny_imagenet` for the model preset, `defense=<preset>`), fitted by a `pl.Trainer`
  with `conf/trainer/default.yaml`'s settings minus checkpoints, progress bar and model summary, and the
  project's default TensorBoard logger (`--logger none|csv|tensorboard`);
* plain: a hand-written loop over the same batches calling the same network, defense hooks and optimizer
  (built the same way, from the same seed), with the module's loss formula. Both paths see the same random
  numbers, so their last-step losses must agree: that is checked (`loss_abs_diff`), proving the two do the
  same computation, and the difference in time is Lightning plus the module's bookkeeping (logging, the
  accuracy metric, the non-finite check).

Each run is clocked over its steady state (after `warmup` steps) and repetitions are interleaved across all
cases and both paths (see `_timing.py`). Overheads are medians of per-repetition paired ratios.

Also measured: the loss-level fast paths (the factored smoothness loss against explicit n x n Laplacian
powers; the Parseval retraction batched over layers against one layer at a time), and a host-sync audit of
a few steps of a tiny model (`benchmarks/host_syncs.py: HostSyncAudit`): every Python-level call that would make the
host wait for a GPU, per step and by call site, for both paths.

Synthetic data of the real shapes (32x32x3 for 10 classes, 64x64x3 for 200): speed does not depend on the
values. The default width is 16 on CPU (minutes), 64 on a GPU.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks import components, host_syncs
from benchmarks._setup import (
    DATASETS,
    RunSettings,
    build_run,
    common_arguments,
    common_settings,
    compose_config,
    synthetic_batches,
)
from benchmarks._timing import (
    interleaved,
    load_average,
    machine_info,
    paired_overhead,
    paired_ratios,
    publish,
    quiet_lightning,
    summarize,
)
from benchmarks.training_paths import lightning_fit, plain_fit
from benchmarks.training_report import GPU_COMMAND, evaluate_targets, format_report

DEFAULT_OUT = Path("benchmarks/results/training.json")


@dataclass(frozen=True)
class Case:
    """One row: a defense preset on a dataset shape, optionally with one fast path switched on."""

    name: str
    defense: str  # conf/defense/<defense>.yaml
    overrides: tuple[str, ...] = ()
    classes: int = 10
    baseline: str = "vanilla"  # the case its cost is compared with
    precision: str | None = None  # None: the run's --precision (likewise for the two switches below)
    channels_last: bool | None = None
    compile: bool | None = None
    full_only: bool = False  # left out of --quick
    note: str = ""


CASES: tuple[Case, ...] = (
    Case("vanilla", "vanilla", note="cross-entropy only"),
    Case("adv", "adv", ("defense.fraction=0.5",), note="FGSM training, half of each batch"),
    Case("smooth_m1", "smooth", ("defense.m=1",), note="every ReLU tapped, dense graph"),
    Case("smooth_m2", "smooth", ("defense.m=2",), note="every ReLU tapped, dense graph"),
    Case("vanilla_200", "vanilla", classes=200, baseline="vanilla_200", full_only=True, note="64x64, stem max-pool"),
    Case("smooth_m1_200", "smooth", ("defense.m=1",), classes=200, baseline="vanilla_200", full_only=True),
    Case("smooth_m2_200", "smooth", ("defense.m=2",), classes=200, baseline="vanilla_200", full_only=True),
    Case("parseval", "parseval", note="retraction + scaled conv + convex residual"),
    Case("combined", "adv_parseval_smooth", ("defense.fraction=0.5",), note="adv + parseval + smooth m=2"),
    Case("vanilla+channels_last", "vanilla", channels_last=True, note="fast path alone"),
    Case("vanilla+bf16", "vanilla", precision="bf16-mixed", note="fast path alone"),
    Case("vanilla+compile", "vanilla", compile=True, full_only=True, note="fast path alone"),
)


@dataclass
class Settings(RunSettings):
    """Everything a run depends on; stored in the JSON next to the numbers."""

    steps: int = 10
    warmup: int = 2
    logger: str = "tensorboard"
    cases: list[str] | None = None  # None: all (minus full_only in quick)
    components: bool = True
    audit: bool = True


# ------------------------------------------------------------------------------------------- the runs
def _effective(case: Case, s: Settings) -> dict[str, Any]:
    return {
        "precision": case.precision or s.precision,
        "channels_last": s.channels_last if case.channels_last is None else case.channels_last,
        "compile": s.compile if case.compile is None else case.compile,
    }


def select_cases(s: Settings) -> list[Case]:
    """The cases of this run: all (or `s.cases`), minus full-only ones in quick mode and fast-path rows that
    would repeat the base configuration (e.g. `vanilla+bf16` when every case already runs bf16)."""
    base = {"precision": s.precision, "channels_last": s.channels_last, "compile": s.compile}
    chosen = []
    for case in CASES:
        if s.cases is not None:
            if case.name in s.cases:
                chosen.append(case)
            continue
        if s.quick and case.full_only:
            continue
        if "+" in case.name and _effective(case, s) == base:
            continue
        chosen.append(case)
    names = {c.name for c in chosen}
    missing = [c.baseline for c in chosen if c.baseline not in names]
    chosen += [c for c in CASES if c.name in missing]
    return chosen


def _case_config(case: Case, s: Settings):
    dataset = DATASETS[case.classes][3]
    return compose_config(dataset, case.defense, [*case.overrides, f"model.width={s.width}", *s.model_overrides])


def _runner(case: Case, path: str, cfg: Any, batches: list, s: Settings) -> Callable[[], dict[str, Any]]:
    eff = _effective(case, s)
    log_every = int(cfg.trainer.get("log_every_n_steps", 10))

    def run() -> dict[str, Any]:
        module = build_run(cfg, case.classes, s.seed, eff["channels_last"], eff["compile"]).to(s.device)
        torch.manual_seed(s.seed + 1)  # both paths draw the same adversarial magnitudes
        if path == "plain":
            return plain_fit(module, batches, s.warmup, s.device, eff["precision"])
        return lightning_fit(module, batches, s.warmup, s.device, eff["precision"], s.logger, log_every)

    return run


def measure_cases(s: Settings) -> dict[str, Any]:
    """Every case x {plain, lightning}, repetitions interleaved across all of them."""
    cases = select_cases(s)
    batches = {
        c: synthetic_batches(s.warmup + s.steps, s.batch_size, c, s.device, s.seed) for c in {x.classes for x in cases}
    }
    runners = {}
    for case in cases:
        cfg = _case_config(case, s)
        for path in ("plain", "lightning"):
            runners[(case.name, path)] = _runner(case, path, cfg, batches[case.classes], s)
    raw = interleaved(s.reps, runners)

    images = s.batch_size * s.steps
    out: dict[str, Any] = {}
    for case in cases:
        plain, light = raw[(case.name, "plain")], raw[(case.name, "lightning")]
        wall = {p: [r["wall"] for r in raw[(case.name, p)]] for p in ("plain", "lightning")}
        row: dict[str, Any] = {
            "defense": case.defense,
            "overrides": list(case.overrides),
            "classes": case.classes,
            "image_size": DATASETS[case.classes][2],
            "note": case.note,
            **_effective(case, s),
            "baseline": case.baseline,
        }
        for p, runs in (("plain", plain), ("lightning", light)):
            row[p] = {
                "images_per_s": summarize([images / r["wall"] for r in runs]),
                "wall_s": summarize([r["wall"] for r in runs]),
                "cpu_s": summarize([r["cpu"] for r in runs]),
                "last_loss": runs[-1]["last_loss"],
            }
        row["lightning"]["fit_total_s"] = summarize([r["fit_total_s"] for r in light])
        row["lightning"]["epoch_end_s"] = summarize([r["epoch_end_s"] for r in light])  # once per epoch
        row["lightning_overhead"] = paired_overhead(wall["lightning"], wall["plain"])
        row["lightning_overhead_cpu"] = paired_overhead([r["cpu"] for r in light], [r["cpu"] for r in plain])
        row["loss_abs_diff"] = abs(plain[-1]["last_loss"] - light[-1]["last_loss"])
        out[case.name] = row
    for case in cases:  # ratios to the baseline, paired per repetition, for both paths
        base = out[case.baseline]
        for p in ("plain", "lightning"):
            for clock, key in (("wall_s", "vs_baseline"), ("cpu_s", "vs_baseline_cpu")):
                out[case.name][p][key] = paired_ratios(out[case.name][p][clock]["values"], base[p][clock]["values"])
    return out


def audit_combined(s: Settings, case_name: str = "combined", steps: int = 10) -> dict[str, Any]:
    """The host-sync audit of `case_name` on a tiny model (width 4, one block per stage, batch 8)."""
    case = next(c for c in CASES if c.name == case_name)
    tiny = Settings(
        width=4,
        batch_size=8,
        device=s.device,
        precision=s.precision,
        logger=s.logger,
        seed=s.seed,
        model_overrides=["model.blocks=[1,1,1,1]"],
    )
    return host_syncs.audit(_case_config(case, tiny), case_name, case.classes, tiny, steps)


# --------------------------------------------------------------------------------------------- report
def run(s: Settings) -> dict[str, Any]:
    """The whole benchmark as a dict (what the JSON holds)."""
    quiet_lightning()
    load_before = load_average()
    cases = measure_cases(s)
    result: dict[str, Any] = {
        "benchmark": "training",
        "settings": vars(s).copy(),
        "machine": machine_info(s.device),
        "cases": cases,
        "targets": evaluate_targets(cases, s.device),
        "gpu_command": GPU_COMMAND,
    }
    if s.components:
        result["components"] = components.measure(s)
    if s.audit:
        result["host_syncs"] = audit_combined(s)
    result["load_average_1min_before_after"] = [load_before, load_average()]
    return result


def settings_from_args(argv: Sequence[str] | None = None) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Quick mode trades steps and the 200-class cases, not repetitions: a 10 % target needs the median of
    # several interleaved pairs, one run moving by as much on a shared machine.
    common_arguments(
        parser, "fewer steps and cases: about two minutes on 2 idle cores", "tensorboard", DEFAULT_OUT, quick_reps=5
    )
    parser.add_argument("--batch-size", type=int, help="default 128 on CPU, 512 on cuda")
    parser.add_argument("--steps", type=int, help="timed steps per run (default 10, quick 3)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 2, quick 1; more with --compile)")
    parser.add_argument("--cases", nargs="+", choices=[c.name for c in CASES], help="only these (and baselines)")
    parser.add_argument("--no-components", action="store_true", help="skip the loss-level fast-path rows")
    parser.add_argument("--no-audit", action="store_true", help="skip the host-sync audit")
    a = parser.parse_args(argv)
    gpu = torch.device(a.device).type == "cuda"
    s = Settings(
        **common_settings(a),
        batch_size=a.batch_size or (512 if gpu else 128),
        steps=a.steps or (3 if a.quick else 10),
        warmup=a.warmup if a.warmup is not None else (1 if a.quick else 2) + (3 if a.compile else 0),
        cases=a.cases,
        components=not a.no_components,
        audit=not a.no_audit,
    )
    return s, a.out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    s, out = settings_from_args(argv)
    result = run(s)
    return publish(format_report(result), out, result)


if __name__ == "__main__":
    main()
