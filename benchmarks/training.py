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
a few steps of a tiny model (`adv_smooth.utils.host_sync.HostSyncAudit`): every Python-level call that would make the
host wait for a GPU, per step and by call site, for both paths.

Synthetic data of the real shapes (32x32x3 for 10 classes, 64x64x3 for 200): speed does not depend on the
values. The default width is 16 on CPU (minutes), 64 on a GPU.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adv_smooth.defenses import TrainBatch
from adv_smooth.defenses.laplacian import dense_form, laplacian_smoothness
from adv_smooth.defenses.objective import training_objective
from adv_smooth.defenses.parseval import parseval_retraction_
from adv_smooth.utils.host_sync import HostSyncAudit
from adv_smooth.utils.io import write_json_atomic
from benchmarks._timing import (
    DATASETS,
    Clock,
    RunSettings,
    StepWindow,
    autocast,
    build_run,
    common_arguments,
    common_settings,
    compose_config,
    format_table,
    interleaved,
    load_average,
    machine_info,
    make_trainer,
    paired_overhead,
    paired_ratios,
    quiet_lightning,
    summarize,
    synthetic_batches,
    target_status,
    timed,
)

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

#: name -> (metric, case, baseline, limit). Metric "overhead": time ratio - 1; "ratio": time ratio.
TARGETS = {
    "cpu": {
        "lightning overhead (all cases)": ("lightning", None, None, 0.05),
        "smoothness m=2, 10 classes": ("overhead", "smooth_m2", "vanilla", 0.15),
        "parseval": ("overhead", "parseval", "vanilla", 0.10),
        "adversarial training": ("ratio", "adv", "vanilla", 2.2),
    },
    # The GPU limits are not restated here; the rows say "not measured" until a GPU run fills them.
    "cuda": {
        "lightning overhead (all cases)": ("lightning", None, None, None),
        "smoothness m=2, 10 classes": ("overhead", "smooth_m2", "vanilla", None),
        "parseval": ("overhead", "parseval", "vanilla", None),
        "adversarial training": ("ratio", "adv", "vanilla", None),
    },
}
GPU_COMMAND = (
    "python -m benchmarks.training --device cuda --width 64 --batch-size 512 --precision bf16-mixed "
    "--channels-last --compile"
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


# ------------------------------------------------------------------------------------------ the two paths
def plain_step(net: nn.Module, defense: Any, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, amp) -> Tensor:
    """One training step by hand: the module's `training_objective`, then backward and step."""
    with amp:
        loss = training_objective(net, defense, TrainBatch.clean(x, y)).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    defense.after_optimizer_step(net)
    return loss.detach()


def plain_fit(
    module: Any,
    batches: Sequence[tuple[Tensor, Tensor]],
    warmup: int,
    device: str,
    precision: str,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Train `module.net` over `batches` with a hand loop; clock the steps from `warmup` on."""
    net, defense = module.net, module.defense
    optimizer = module.optimizer_factory(params=module.parameters())
    module.train()
    defense.setup(module, None)  # what on_fit_start does (no datamodule here either)
    amp = autocast(device, precision)
    clock = Clock(device)
    loss = None
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            clock.start()
            if on_start:
                on_start()
        loss = plain_step(net, defense, optimizer, x, y, amp)
    last = float(loss)  # one read at the end, as the Lightning path
    clock.stop()
    return {"wall": clock.wall, "cpu": clock.cpu, "last_loss": last}


def lightning_fit(
    module: Any,
    batches: Sequence[tuple[Tensor, Tensor]],
    warmup: int,
    device: str,
    precision: str,
    logger: str,
    log_every_n_steps: int,
    on_start: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """`trainer.fit(module)` over `batches` (one epoch); the window starts at batch `warmup`."""
    window = StepWindow(warmup, device, on_start=on_start, on_stop=on_stop)
    with tempfile.TemporaryDirectory(prefix="bench-") as root:
        trainer = make_trainer(device, precision, [window], logger, log_every_n_steps, Path(root))
        total, _ = timed(lambda: trainer.fit(module, train_dataloaders=batches), device)
    return {
        "wall": window.clock.wall,
        "cpu": window.clock.cpu,
        "last_loss": window.last_loss,
        "fit_total_s": total,
        "epoch_end_s": window.epoch_end.wall,
    }


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


def pooled_lightning_overhead(cases: dict[str, Any]) -> dict[str, Any]:
    """Lightning's time over the plain loop's, summed over every case, per repetition (pairs share the machine).

    The target's number. Taking the worst single case instead would report noise: with a few timed steps a
    case's median moves by several percent between runs, and the largest of ten such medians sits above the
    true overhead even when that is zero. The per-case values stay in the table (and `worst_case` in the JSON).
    """
    per_rep = {
        p: [sum(v) for v in zip(*(c[p]["wall_s"]["values"] for c in cases.values()))] for p in ("lightning", "plain")
    }
    return paired_overhead(per_rep["lightning"], per_rep["plain"])


def evaluate_targets(cases: dict[str, Any], device: str) -> list[dict[str, Any]]:
    """Each target on the device measured, and every other device's targets as "not measured"."""
    rows = []
    for dev, targets in TARGETS.items():
        for name, (metric, case, baseline, limit) in targets.items():
            row: dict[str, Any] = {"device": dev, "target": name, "metric": metric, "limit": limit}
            value, where = None, None
            if dev == torch.device(device).type:
                if metric == "lightning":
                    if cases:
                        pooled = pooled_lightning_overhead(cases)
                        value, where = pooled["median"], "all cases"
                        worst = max(cases, key=lambda c: cases[c]["lightning_overhead"]["median"])
                        row["worst_case"] = {"case": worst, "value": cases[worst]["lightning_overhead"]["median"]}
                elif case in cases and baseline in cases:
                    ratio = cases[case]["plain"]["vs_baseline"]["median"]  # defense cost, Lightning-free
                    value, where = (ratio - 1 if metric == "overhead" else ratio), case
            row.update(value=value, case=where, status=target_status(value, limit))
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------ loss-level fast paths
def textbook_smoothness(activations: Tensor, labels: Tensor, m: int) -> Tensor:
    """What the fast path replaces, all autograd: normalized features, W = U U^T without its diagonal,
    L = D - W, and L^m formed with `matrix_power`, then trace(Y^T L^m Y)."""
    u = F.normalize(activations.flatten(1).float(), dim=1)
    w = u @ u.T
    w = w - torch.diag(torch.diagonal(w))
    lap = torch.diag(w.sum(1)) - w
    y = labels.to(w.dtype)
    return torch.trace(y.T @ torch.linalg.matrix_power(lap, m) @ y)


def _smoothness_runner(
    fn: Callable[..., Tensor], taps: list[Tensor], onehot: Tensor, m: int, device: str
) -> Callable[[], float]:
    """Seconds for the loss's forward + backward over every tap, as a training step computes it."""

    def run() -> float:
        acts = [a.clone().requires_grad_(True) for a in taps]
        return timed(lambda: torch.stack([fn(a, onehot, m) for a in acts]).diff().abs().mean().backward(), device)[0]

    return run


def measure_components(s: Settings) -> dict[str, Any]:
    """Smoothness loss (fwd + bwd over every tap of the network) and Parseval retraction, fast vs textbook."""
    out: dict[str, Any] = {"smoothness": {}, "parseval": {}}
    reps = max(3, s.reps)
    for classes in (10, 200):
        cfg = compose_config(DATASETS[classes][3], "vanilla", [f"model.width={s.width}", *s.model_overrides])
        net = build_run(cfg, classes, s.seed).net.to(s.device)
        x, y = synthetic_batches(1, s.batch_size, classes, s.device, s.seed)[0]
        with torch.no_grad():
            taps = [a.detach() for a in net(x, return_activations=True)[1]]
        onehot = F.one_hot(y, classes)

        for m in (1, 2):
            fast = _smoothness_runner(laplacian_smoothness, taps, onehot, m, s.device)
            textbook = _smoothness_runner(textbook_smoothness, taps, onehot, m, s.device)
            fast(), textbook()  # warm-up
            raw = interleaved(reps, {"fast": fast, "textbook": textbook})
            out["smoothness"][f"m{m}_{classes}cls"] = {
                "fast_s": summarize(raw["fast"]),
                "textbook_s": summarize(raw["textbook"]),
                "speedup": paired_ratios(raw["textbook"], raw["fast"]),
                "taps": len(taps),
                "batch": s.batch_size,
                "form": dense_form(s.batch_size, classes, m),
            }

    cfg = compose_config("cifar10", "parseval", [f"model.width={s.width}", *s.model_overrides])
    net = build_run(cfg, 10, s.seed).net.to(s.device)
    params = [p for p in net.parameters() if p.requires_grad]
    beta = float(cfg.defense.beta)

    def batched() -> float:
        return timed(lambda: parseval_retraction_(params, beta), s.device)[0]

    def per_layer() -> float:
        return timed(lambda: [parseval_retraction_([p], beta) for p in params], s.device)[0]

    batched(), per_layer()
    raw = interleaved(reps, {"batched": batched, "per_layer": per_layer})
    out["parseval"] = {
        "batched_s": summarize(raw["batched"]),
        "per_layer_s": summarize(raw["per_layer"]),
        "speedup": paired_ratios(raw["per_layer"], raw["batched"]),
        "weights": sum(p.dim() >= 2 for p in params),
    }
    return out


# ---------------------------------------------------------------------------------------- host syncs
def audit_host_syncs(s: Settings, case_name: str = "combined", steps: int = 10) -> dict[str, Any]:
    """Per-step sync sites of both paths on a tiny model (width 4, one block per stage, batch 8).

    `steps` = 10 with log_every_n_steps = 10 covers one logging interval, so a site firing at 0.1/step is
    the logging interval and 1.0/step is every step.
    """
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
    cfg = _case_config(case, tiny)
    batches = synthetic_batches(1 + steps, tiny.batch_size, case.classes, s.device, s.seed)
    out: dict[str, Any] = {
        "case": case_name,
        "steps": steps,
        "batch_size": tiny.batch_size,
        "log_every_n_steps": int(cfg.trainer.get("log_every_n_steps", 10)),
    }
    for path in ("plain", "lightning"):
        module = build_run(cfg, case.classes, s.seed).to(s.device)
        audit = HostSyncAudit()
        audit.recording = False

        def start(a: HostSyncAudit = audit) -> None:
            a.recording = True

        def stop(a: HostSyncAudit = audit) -> None:
            a.recording = False

        with audit:
            if path == "plain":
                plain_fit(module, batches, 1, s.device, s.precision, on_start=start)
            else:
                lightning_fit(
                    module,
                    batches,
                    1,
                    s.device,
                    s.precision,
                    s.logger,
                    out["log_every_n_steps"],
                    on_start=start,
                    on_stop=stop,
                )
        out[path] = audit.per_step(steps)
    return out


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
        result["components"] = measure_components(s)
    if s.audit:
        result["host_syncs"] = audit_host_syncs(s)
    result["load_average_1min_before_after"] = [load_before, load_average()]
    return result


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:+.1f}%"


def format_report(r: dict[str, Any]) -> str:
    s = r["settings"]
    header = (
        "case",
        "classes",
        "path",
        "images/s",
        "spread",
        "CPU-s/step",
        "Lightning vs plain",
        "vs baseline",
        "(CPU-s)",
    )
    rows = [header]
    for name, c in r["cases"].items():
        for p in ("plain", "lightning"):
            d = c[p]
            rows.append(
                (
                    name if p == "plain" else "",
                    str(c["classes"]) if p == "plain" else "",
                    p,
                    f"{d['images_per_s']['median']:.1f}",
                    f"{d['images_per_s']['spread_pct']:.0f}%",
                    f"{d['cpu_s']['median'] / s['steps']:.3f}",
                    _pct(c["lightning_overhead"]["median"]) if p == "lightning" else "",
                    f"{d['vs_baseline']['median']:.2f}x {c['baseline']}" if name != c["baseline"] else "-",
                    f"{d['vs_baseline_cpu']['median']:.2f}x" if name != c["baseline"] else "",
                )
            )
    lines = [
        f"training throughput: width {s['width']}, batch {s['batch_size']}, {s['steps']} timed steps after "
        f"{s['warmup']} warm-up, {s['reps']} interleaved reps, {s['device']}, {s['precision']}, "
        f"channels_last={s['channels_last']}, compile={s['compile']}, logger={s['logger']}",
        format_table(rows),
        "Lightning's epoch end (metric reduction, logger flush) is once per epoch, outside the per-step window: "
        f"median {statistics.median(c['lightning']['epoch_end_s']['median'] for c in r['cases'].values()):.3f} s",
        "",
    ]
    trows = [("target", "device", "limit", "measured", "status")]
    for t in r["targets"]:
        unit = (lambda v: f"{v:.2f}x") if t["metric"] == "ratio" else _pct
        limit = "-" if t["limit"] is None else unit(t["limit"]).replace("+", "<= ")
        if t["metric"] == "ratio" and t["limit"] is not None:
            limit = f"<= {t['limit']:.2f}x"
        value = "not measured" if t["value"] is None else f"{unit(t['value'])} ({t['case']})"
        if "worst_case" in t:
            value += f"; worst case {_pct(t['worst_case']['value'])} ({t['worst_case']['case']})"
        trows.append((t["target"], t["device"], limit, value, t["status"]))
    lines += [format_table(trows), ""]
    if "components" in r:
        comp = r["components"]
        crow = [("loss-level fast path", "fast (median s)", "textbook (median s)", "speedup")]
        for key, v in comp["smoothness"].items():
            crow.append(
                (
                    f"smoothness {key} ({v['form']}) vs textbook L^m",
                    f"{v['fast_s']['median']:.4f}",
                    f"{v['textbook_s']['median']:.4f}",
                    f"{v['speedup']['median']:.2f}x",
                )
            )
        pv = comp["parseval"]
        crow.append(
            (
                f"parseval retraction, {pv['weights']} weights: batched vs per layer",
                f"{pv['batched_s']['median']:.4f}",
                f"{pv['per_layer_s']['median']:.4f}",
                f"{pv['speedup']['median']:.2f}x",
            )
        )
        lines += [format_table(crow), ""]
    if "host_syncs" in r:
        h = r["host_syncs"]
        lines.append(
            f"host syncs per step (would block on a GPU), {h['case']}, {h['steps']} steps, "
            f"log_every_n_steps={h['log_every_n_steps']}:"
        )
        for p in ("plain", "lightning"):
            sites = h[p]
            lines.append(f"  {p}: {sum(x['per_step'] for x in sites):.1f} per step")
            lines += [f"    {x['per_step']:.1f}/step  {x['kind']:<32} {x['site']}" for x in sites]
        lines.append("")
    load = r["load_average_1min_before_after"]
    lines.append(
        f"threads {r['machine']['threads']} on {r['machine']['cpu_count']} CPUs, "
        f"load avg before/after {load[0]:.1f}/{load[1]:.1f}; GPU: {GPU_COMMAND}"
    )
    return "\n".join(lines)


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
    print(format_report(result))
    write_json_atomic(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
