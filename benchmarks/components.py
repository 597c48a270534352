"""The loss-level fast paths against what they replace, interleaved: the smoothness loss (factored / explicit
dense forms with hand-written backward passes) against autograd through the textbook L^m, and the Parseval
retraction batched over layers against one layer at a time. Part of `python -m benchmarks.training`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from adv_smooth.defenses.laplacian import dense_form, laplacian_smoothness
from adv_smooth.defenses.parseval import parseval_retraction_
from benchmarks._setup import DATASETS, RunSettings, build_run, compose_config, synthetic_batches
from benchmarks._timing import format_table, interleaved, paired_ratios, summarize, timed


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


def measure(s: RunSettings) -> dict[str, Any]:
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


def format_rows(comp: dict[str, Any]) -> str:
    """The table of `measure`'s result."""
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
    return format_table(crow)
