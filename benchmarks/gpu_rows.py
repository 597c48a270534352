"""The measured rows of `python -m benchmarks.gpu`: training, evaluation, a whole epoch and the overhead study,
each the project's path beside the plain reference (`benchmarks/plain_reference.py`), interleaved, medians."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from adv_smooth.app.build import build_callback
from benchmarks import gpu_parts as parts
from benchmarks import plain_reference as plain
from benchmarks._timing import Clock, interleaved, sync

LEVELS = [50.0, 45.0, 40.0, 33.0]


def _blocks(s: dict[str, Any]) -> tuple[int, ...]:
    return (1, 1) if s["smoke"] else (2, 2, 2, 2)


def median_rate(runs: list[dict[str, Any]], images: int) -> dict[str, Any]:
    walls = [r["wall"] for r in runs]
    return {"images_per_s": images / statistics.median(walls), "wall_s": walls, "last_loss": runs[-1].get("last_loss")}


# ------------------------------------------------------------------------------------------------------- training
def training(s: dict[str, Any], compiled: bool = False) -> dict[str, Any]:
    """Interleaved fits of every training row; returns per-row images/s and the ratios the targets read."""
    n_train = (s["warmup"] + s["steps"]) * s["batch_size"]
    data = parts.SyntheticImages(n_train, batch_size=s["batch_size"], val_fraction=0.0, augment=True)
    images, labels = parts.device_data(s, n_train)
    adv = {"adv_fraction": 0.5, "snr_db": 33.0}
    rows = (
        {"vanilla": ("vanilla", ())}
        if compiled
        else {
            "vanilla": ("vanilla", ()),
            "adv": ("adv", ("defense.fraction=0.5",)),
            "smooth_m2": ("smooth", ("defense.m=2",)),
            "parseval": ("parseval", ()),
        }
    )
    runners: dict[str, Callable[[], dict[str, Any]]] = {}
    first_fit: dict[str, float] = {}
    modules: dict[str, Any] = {}
    for row, (defense, overrides) in rows.items():
        module, _ = parts.project_module(s, defense, overrides, compile=compiled and s["compile"])
        modules[row] = module
        logger = parts.tensorboard(Path(tempfile.mkdtemp(prefix="gpu-tb-")))

        def fit(module=module, row=row, logger=logger) -> dict[str, Any]:
            out = parts.project_fit(s, module, data, s["warmup"], logger=logger, limit_val_batches=0)
            first_fit.setdefault(row, out["fit_total_s"])
            return out

        runners[row] = fit
    for row in ("vanilla", "adv")[: 1 if compiled else 2]:
        net = plain.make_net(
            s["width"], 10, s["device"], s["channels_last"], compiled and s["compile"], blocks=_blocks(s)
        )
        opt = plain.sgd(net)
        kw = adv if row == "adv" else {}
        t0 = time.perf_counter()
        plain.train_epoch(net, opt, images, labels, s["batch_size"], steps=2, **kw)  # compile / autotune, untimed
        sync(s["device"])
        first_fit[f"plain_{row}"] = time.perf_counter() - t0
        runners[f"plain_{row}"] = lambda net=net, opt=opt, kw=kw: parts.plain_fit(
            s, net, opt, images, labels, s["warmup"], s["steps"], **kw
        )
    raw = interleaved(s["reps"], runners)
    images_timed = s["steps"] * s["batch_size"]
    out: dict[str, Any] = {row: median_rate(runs, images_timed) for row, runs in raw.items()}
    out["first_call_s"] = first_fit  # compile (or autotune) + the first steps: the start-up a short run pays
    walls = {row: statistics.median(r["wall"] for r in runs) for row, runs in raw.items()}
    suffix = "_compiled" if compiled else ""  # its own key: a compiled row must not stand in for the eager target
    out["ratios"] = {f"vanilla_vs_plain{suffix}": walls["plain_vanilla"] / walls["vanilla"]}
    if not compiled:
        out["ratios"].update(
            adv_vs_plain=walls["plain_adv"] / walls["adv"],
            smooth_m2_step_over_vanilla=walls["smooth_m2"] / walls["vanilla"],
            parseval_step_over_vanilla=walls["parseval"] / walls["vanilla"],
        )
    out["_runners"] = runners  # for the profiles of missed targets; dropped before writing
    out["_vanilla_state"] = {k: v.detach().clone() for k, v in modules["vanilla"].net.state_dict().items()}
    return out


# ----------------------------------------------------------------------------------------------------- evaluation
def _smoke_steps(s: dict[str, Any], *attacks: str) -> list[str]:
    """On --smoke, the presets' PGD at the plain loop's `pgd_steps` (seconds, not minutes, on a CPU); on a GPU the
    presets' own steps, which `pgd_steps` equals."""
    return [f"eval.attacks.{a}.steps={s['pgd_steps']}" for a in attacks] if s["smoke"] else []


def evaluation(s: dict[str, Any], net_state: dict[str, Tensor] | None) -> dict[str, Any]:
    images, labels = parts.device_data(s, s["eval_images"], seed=1)
    levels = LEVELS
    report_module, report_cfg = parts.project_module(
        s, "vanilla", ["eval=report", "eval.sanity_snr_db=null", *_smoke_steps(s, "pgd")]
    )
    net = plain.make_net(s["width"], 10, s["device"], s["channels_last"], False, blocks=_blocks(s))
    if net_state is not None:  # the weights the training rows reached: predictions that are not all one class
        report_module.net.load_state_dict(net_state)
        net.load_state_dict(net_state)
    raw = interleaved(
        1 if s["smoke"] else 2,
        {
            "report": lambda: parts.project_test(s, report_module, report_cfg, images, labels),
            "plain_report": lambda: parts.plain_test(s, net, images, labels, levels),
        },
    )
    out = {row: {"wall_s": [r["wall"] for r in runs], "acc": runs[-1]["acc"]} for row, runs in raw.items()}
    default_module, default_cfg = parts.project_module(
        s, "vanilla", ["eval=default", *_smoke_steps(s, "pgd", "pgd_l2")]
    )
    if net_state is not None:
        default_module.net.load_state_dict(net_state)
    d = parts.project_test(s, default_module, default_cfg, images, labels)
    out["default"] = {"wall_s": [d["wall"]], "acc": d["acc"]}
    for row in out:
        out[row]["images_per_s"] = s["eval_images"] / statistics.median(out[row]["wall_s"])
    med = {row: statistics.median(v["wall_s"]) for row, v in out.items()}
    out["ratios"] = {
        "report_over_plain": med["report"] / med["plain_report"],
        "report_wall_s": med["report"],
        "default_wall_s": med["default"],
    }
    return out


# -------------------------------------------------------------------------------------------------------- epoch
def epoch(s: dict[str, Any]) -> dict[str, Any]:
    """A whole epoch: 45,000 images trained and 5,000 validated with the budgeted probe (project), the same work by
    hand (plain). Start-up (data to the GPU, Trainer set-up) is reported apart."""
    n = s["epoch_images"]
    module, cfg = parts.project_module(s, "vanilla")
    data = parts.SyntheticImages(
        n, batch_size=s["batch_size"], eval_batch_size=s["eval_batch"], val_fraction=0.1, augment=True, seed=2
    )
    warm = parts.SyntheticImages(4 * s["batch_size"], batch_size=s["batch_size"], val_fraction=0.0, augment=True)
    parts.project_fit(s, module, warm, 0, limit_val_batches=0)  # cuDNN choices, allocator: as the plain warm-up
    callback = build_callback(cfg.callbacks.robustness, log_figure=False)
    t0 = time.perf_counter()
    fit = parts.project_fit(s, module, data, 0, callbacks=[callback])
    total = time.perf_counter() - t0
    val = callback.results().get("robustness", {}).get("val", {})
    probe_n = int(val.get("n", 0))
    probe_level = min((float(k[3:]) for a in val.get("attacks", {}).values() for k in a["acc"]), default=33.0)
    images, labels = parts.device_data(s, n, seed=2)
    n_val = round(0.1 * n)
    net = plain.make_net(s["width"], 10, s["device"], s["channels_last"], False, blocks=_blocks(s))
    opt = plain.sgd(net)
    plain.train_epoch(net, opt, images[:n_val], labels[:n_val], s["batch_size"], steps=4)  # warm-up
    clock = Clock(s["device"])
    clock.start()
    plain.train_epoch(net, opt, images[n_val:], labels[n_val:], s["batch_size"])
    counts = plain.validate(net, images[:n_val], labels[:n_val], s["eval_batch"], probe_n, probe_level)
    counts.tolist()
    clock.stop()
    return {
        "project_epoch_s": fit["wall"],
        "project_startup_s": total - fit["wall"],
        "plain_epoch_s": clock.wall,
        "probe": {"images": probe_n, "snr_db": probe_level, "attacks": sorted(val.get("attacks", {}))},
        "ratios": {"epoch_over_plain": fit["wall"] / clock.wall},
    }


# ------------------------------------------------------------------------------------------------- overhead study
class BareModule(pl.LightningModule):
    """The least a LightningModule can be: cross-entropy, SGD, no logging, no metrics, no checks."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return plain.sgd(self.net)


def overhead(s: dict[str, Any]) -> dict[str, Any]:
    """Where the project's vanilla step loses to the plain loop: the same fit with the logger and the periodic checks
    off, a bare LightningModule, and the plain loop; wall and process CPU seconds per step, repetitions interleaved.
    CPU seconds per step near the wall's say the host, not the GPU, sets the pace."""
    n_train = (s["warmup"] + s["steps"]) * s["batch_size"]
    data = parts.SyntheticImages(n_train, batch_size=s["batch_size"], val_fraction=0.0, augment=True)
    images, labels = parts.device_data(s, n_train)
    project, _ = parts.project_module(s, "vanilla")
    quiet, _ = parts.project_module(s, "vanilla")
    quiet.finite_check_every = 10**9
    bare = BareModule(parts.project_module(s, "vanilla")[0].net)
    net = plain.make_net(s["width"], 10, s["device"], s["channels_last"], False, blocks=_blocks(s))
    opt = plain.sgd(net)
    tb = parts.tensorboard(Path(tempfile.mkdtemp(prefix="gpu-tb-")))
    never = {"logger": False, "log_every_n_steps": 10**6, "limit_val_batches": 0}
    runners = {
        "project": lambda: parts.project_fit(s, project, data, s["warmup"], logger=tb, limit_val_batches=0),
        "project_no_logging": lambda: parts.project_fit(s, quiet, data, s["warmup"], **never),
        "bare_lightning": lambda: parts.project_fit(s, bare, data, s["warmup"], **never),
        "plain": lambda: parts.plain_fit(s, net, opt, images, labels, s["warmup"], s["steps"]),
    }
    raw = interleaved(s["reps"], runners)
    out: dict[str, Any] = {}
    for row, runs in raw.items():
        out[row] = {
            "ms_per_step": 1e3 * statistics.median(r["wall"] for r in runs) / s["steps"],
            "cpu_ms_per_step": 1e3 * statistics.median(r["cpu"] for r in runs) / s["steps"],
        }
    steps = s["warmup"] + s["steps"]
    out["kernels"] = {row: parts.profile_top(runners[row], s["device"], steps) for row in ("project", "plain")}
    out["host_syncs"] = {row: parts.sync_sites(runners[row], s["device"]) for row in ("project", "plain")}
    return out


def graphs(s: dict[str, Any]) -> dict[str, Any]:
    """The plain loop eager against `torch.compile(mode="reduce-overhead")` (CUDA graphs: one launch replays a whole
    forward or backward): if the eager step is bound by the host's launches, the graphed one shows how far the GPU
    alone would go."""
    import torch as th

    n_train = (s["warmup"] + s["steps"]) * s["batch_size"]
    images, labels = parts.device_data(s, n_train)
    eager = plain.make_net(s["width"], 10, s["device"], s["channels_last"], False, blocks=_blocks(s))
    graphed = th.compile(
        plain.make_net(s["width"], 10, s["device"], s["channels_last"], False, blocks=_blocks(s)),
        mode="reduce-overhead",
    )
    opts = {"eager": plain.sgd(eager), "graphed": plain.sgd(graphed)}
    nets = {"eager": eager, "graphed": graphed}
    first = {}
    for name, net in nets.items():
        t0 = time.perf_counter()
        plain.train_epoch(net, opts[name], images, labels, s["batch_size"], steps=3)
        sync(s["device"])
        first[name] = time.perf_counter() - t0
    runners = {
        name: (lambda net=net, name=name: parts.plain_fit(s, net, opts[name], images, labels, s["warmup"], s["steps"]))
        for name, net in nets.items()
    }
    raw = interleaved(s["reps"], runners)
    out: dict[str, Any] = {"first_call_s": first}
    for name, runs in raw.items():
        out[name] = {
            "images_per_s": s["steps"] * s["batch_size"] / statistics.median(r["wall"] for r in runs),
            "cpu_ms_per_step": 1e3 * statistics.median(r["cpu"] for r in runs) / s["steps"],
        }
    return out
