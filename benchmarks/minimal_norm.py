"""`eval=minimal` against adv-lib's DDN + FMN: CPU time for the same minimal SNRs, side by side (issue 26, item 16).

An independent check of the tool's verdicts ran adv-lib's DDN (100 steps) and FMN (L2, 10 steps) and kept per
image the smaller adversarial perturbation; the preset cost about 5x that. This benchmark runs, in one process,
interleaved, on the same trained model and images:

* `preset`: the `eval=minimal` preset as the test stage runs it (`evaluate_batch` with the preset's attacks,
  levels and cascade, composed from conf/), minimal SNRs from its minimum-norm attack;
* `reference`: adv-lib's `ddn(steps=100)` then `fmn(norm=2, steps=10)`, each image's minimal SNR the larger of the
  two (a smaller adversarial perturbation), counted only where the model really misclassifies the output;
* `fmn_preset`: the preset before this change (FMN with 3 targeted runs + PGD-10 L2, independent), for context.

Process CPU seconds are compared (wall seconds are recorded too): one intra-op thread, medians of per-repetition
ratios. Quality is compared on the images correct clean: robust accuracy at every level of the preset and on a
grid down to 10 dB (the share with a minimal SNR below the level), and the per-image difference in dB.

Models: `cnn`, the attack tests' CNN on scikit-learn's 8x8 digits (trained in about a second); `resnet`, the
default job's network (PreAct ResNet-18 at width 16) on the default job's 32x32 digits, trained for a few epochs.

adv-lib: `pip install --no-deps adv-lib` (its other dependencies are already here or unused; its `visdom` import,
a plotting server it only uses for callbacks, is stubbed here when absent).

    python -m benchmarks.minimal_norm [--quick] [--models cnn resnet] [--out benchmarks/results/minimal_norm.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from adv_smooth.app.build import build_attacks
from adv_smooth.robustness.batch import evaluate_batch
from benchmarks._timing import format_table, interleaved, load_average, machine_info, paired_ratios, publish, summarize

DEFAULT_OUT = Path("benchmarks/results/minimal_norm.json")
TIME_LIMIT = 1.5  # the preset's CPU time over the reference's (issue 26, item 16)
GRID = [50.0, 45.0, 40.0, 33.0, 30.0, 25.0, 20.0, 15.0, 10.0]


def adv_lib() -> tuple[Callable[..., Tensor], Callable[..., Tensor]]:
    """adv-lib's `ddn` and `fmn`; `visdom` (imported at module level for its callbacks) stubbed when absent."""
    if importlib.util.find_spec("adv_lib") is None:
        raise SystemExit("benchmarks.minimal_norm needs adv-lib: pip install --no-deps adv-lib")
    if "visdom" not in sys.modules and importlib.util.find_spec("visdom") is None:
        stub = types.ModuleType("visdom")
        stub.Visdom = object  # never instantiated: no callback is passed
        sys.modules["visdom"] = stub
    from adv_lib.attacks import ddn, fmn

    return ddn, fmn


# --------------------------------------------------------------------------------------------- models
def cnn_model(n: int) -> tuple[nn.Module, Tensor, Tensor]:
    from adv_smooth.defenses.plain_loop import fit_classifier
    from adv_smooth.models.digits_cnn import DigitsCNN, digits_split

    x, y, perm, generator = digits_split(0)
    model = fit_classifier(DigitsCNN(), x, y, perm[:1400], epochs=15, generator=generator)
    test = perm[1400 : 1400 + n]
    return model, x[test], y[test]


def resnet_model(n: int, epochs: int) -> tuple[nn.Module, Tensor, Tensor]:
    """The default job's network and data (`python -m adv_smooth`'s), SGD for `epochs` epochs in a plain loop."""
    from adv_smooth.app.build import build_datamodule
    from adv_smooth.models import PreActResNet
    from benchmarks._setup import compose_config

    dm = build_datamodule(compose_config("digits", "vanilla"))
    (xtr, ytr), (xte, yte) = dm.splits.train, dm.splits.test
    torch.manual_seed(0)
    model = PreActResNet(num_classes=10, in_channels=1, width=16, mean=dm.mean, std=dm.std)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)  # the default job's
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(ytr), generator=generator).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[idx].float() / 255), ytr[idx]).backward()
            opt.step()
    return model.eval(), xte[:n].float() / 255, yte[:n]


# ------------------------------------------------------------------------------------------ the runs
def preset(name: str = "minimal") -> tuple[dict[str, Any], list[float], bool]:
    """The preset as composed for CIFAR-10 (the independent check's data): its own SNR levels, 50 to 33 dB."""
    from benchmarks._setup import compose_config

    cfg = OmegaConf.to_container(compose_config("cifar10", "vanilla", [f"eval={name}"]).eval, resolve=True)
    return build_attacks(cfg["attacks"]), [float(s) for s in cfg["snr_levels"]], bool(cfg["cascade"])


def fmn_preset() -> tuple[dict[str, Any], list[float], bool]:
    """The preset before: FMN (100 steps, 3 targeted runs) + PGD-10 L2, independent."""
    from benchmarks._setup import compose_config

    pgd = compose_config("cifar10", "vanilla").eval.attacks.pgd
    attacks = {"fmn_l2": {"_target_": "adv_smooth.attacks.fmn.FMN", "norm": "l2"}}
    attacks["pgd_l2"] = {**OmegaConf.to_container(pgd, resolve=True), "norm": "l2"}
    return build_attacks(attacks), [50.0, 45.0, 40.0, 33.0], False


def run_preset(model: nn.Module, x: Tensor, y: Tensor, spec: tuple[dict, list[float], bool]) -> Tensor:
    """Per-image minimal SNR from the preset's minimum-norm attack (+inf wrong clean, -inf none found)."""
    attacks, levels, cascade = spec
    out = evaluate_batch(model, x, y, attacks, levels, cascade=cascade)
    (minimal,) = [a["min_snr_db"] for a in out["attacks"].values() if a["min_snr_db"] is not None]
    return minimal.float()


def snr_db(model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor) -> Tensor:
    """The SNR of an adversarial output where the model misclassifies it, -inf elsewhere."""
    with torch.no_grad():
        broken = model(x_adv).argmax(dim=1) != y
    size = (x_adv - x).flatten(1).norm(dim=1)
    snr = 20 * torch.log10(x.flatten(1).norm(dim=1) / size)
    return torch.where(broken, snr, torch.full_like(snr, -math.inf))


def run_reference(model: nn.Module, x: Tensor, y: Tensor, ddn: Callable, fmn: Callable) -> Tensor:
    a = ddn(model, x, y, steps=100)
    b = fmn(model, x, y, norm=2, steps=10)
    return torch.maximum(snr_db(model, x, y, a), snr_db(model, x, y, b))


def timed_cpu(fn: Callable[[], Tensor]) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall, "min_snr_db": out}


# ------------------------------------------------------------------------------------------ quality
def quality(snr: Tensor, clean: Tensor, reference: Tensor) -> dict[str, Any]:
    """Robust accuracy (%) on the grid, and the per-image difference to the reference (dB, + = smaller norm)."""
    diff = (snr - reference)[clean]
    diff = diff[torch.isfinite(diff)]
    return {
        "accuracy_pct": {f"{s:g}": 100 * float(((snr < s) & clean).float().mean()) for s in GRID},
        "median_diff_db": float(diff.median()) if diff.numel() else math.nan,
        "share_worse_0.1db": float((diff < -0.1).float().mean()) if diff.numel() else math.nan,
        "share_better_0.1db": float((diff > 0.1).float().mean()) if diff.numel() else math.nan,
    }


def compare(model: nn.Module, x: Tensor, y: Tensor, reps: int) -> dict[str, Any]:
    ddn, fmn = adv_lib()
    specs = {"preset": preset(), "fmn_preset": fmn_preset()}
    runners = {
        "preset": lambda: timed_cpu(lambda: run_preset(model, x, y, specs["preset"])),
        "reference": lambda: timed_cpu(lambda: run_reference(model, x, y, ddn, fmn)),
    }
    runs = interleaved(reps, runners)
    # context only, and 4x the cost: once, beside one more reference run
    runs["fmn_preset"] = [timed_cpu(lambda: run_preset(model, x, y, specs["fmn_preset"]))]
    runs["reference"].append(timed_cpu(lambda: run_reference(model, x, y, ddn, fmn)))
    with torch.no_grad():
        clean = model(x).argmax(dim=1) == y
    reference = runs["reference"][0]["min_snr_db"]
    result: dict[str, Any] = {"n": len(y), "clean_acc": float(clean.float().mean()), "levels": specs["preset"][1]}
    for name, rows in runs.items():
        result[name] = {
            "cpu_s": summarize([r["cpu_s"] for r in rows]),
            "wall_s": summarize([r["wall_s"] for r in rows]),
            **quality(rows[0]["min_snr_db"], clean, reference),
        }
    reference_cpu = [r["cpu_s"] for r in runs["reference"]]
    result["preset"]["cpu_ratio"] = paired_ratios([r["cpu_s"] for r in runs["preset"]], reference_cpu[:reps])
    result["fmn_preset"]["cpu_ratio"] = paired_ratios([runs["fmn_preset"][0]["cpu_s"]], reference_cpu[reps:])
    levels = [f"{s:g}" for s in specs["preset"][1]]
    ours, ref = result["preset"]["accuracy_pct"], result["reference"]["accuracy_pct"]
    result["checks"] = {
        "cpu_ratio_within_limit": result["preset"]["cpu_ratio"]["median"] <= TIME_LIMIT,
        "no_level_less_broken": all(ours[k] <= ref[k] + 100 / max(len(y), 1) * 0.5 for k in levels),
        "median_norm_not_larger": result["preset"]["median_diff_db"] >= -0.01,
    }
    return result


def run(models: list[str], n: int, reps: int, epochs: int) -> dict[str, Any]:
    torch.set_num_threads(1)  # one intra-op thread: the machine may be shared; both sides alike
    load_before = load_average()
    out: dict[str, Any] = {"benchmark": "minimal_norm", "time_limit": TIME_LIMIT, "reps": reps, "models": {}}
    for name in models:
        model, x, y = cnn_model(n) if name == "cnn" else resnet_model(max(n // 2, 1), epochs)
        out["models"][name] = compare(model, x, y, reps)
    out["machine"] = {**machine_info(), "load_before": load_before, "load_after": load_average()}
    return out


def format_report(result: dict[str, Any]) -> str:
    rows = [["model", "run", "CPU s", "vs reference", "median diff dB", "acc % at " + "/".join(GRID_LABELS)]]
    for model, r in result["models"].items():
        for run_name in ("preset", "reference", "fmn_preset"):
            entry = r[run_name]
            ratio = entry.get("cpu_ratio", {}).get("median")
            acc = "/".join(f"{entry['accuracy_pct'][k]:.1f}" for k in GRID_LABELS)
            rows.append(
                [
                    model,
                    run_name,
                    f"{entry['cpu_s']['median']:.2f}",
                    "-" if ratio is None else f"{ratio:.2f}x",
                    f"{entry['median_diff_db']:+.3f}",
                    acc,
                ]
            )
        rows.append([model, "checks", ", ".join(f"{k}: {v}" for k, v in r["checks"].items()), "", "", ""])
    return format_table(rows)


GRID_LABELS = ["50", "40", "33", "25", "20", "15"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 images, 1 repetition, 1 training epoch")
    parser.add_argument("--models", nargs="+", choices=["cnn", "resnet"], default=["cnn", "resnet"])
    parser.add_argument("--images", type=int, default=256, help="test images (half of them for the resnet)")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions of preset and reference")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs of the resnet")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    n, reps, epochs = (64, 1, 1) if args.quick else (args.images, args.reps, args.epochs)
    result = run(args.models, n, reps, epochs)
    publish(format_report(result), args.out, result)


if __name__ == "__main__":
    main()
