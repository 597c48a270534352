"""`eval=strong` against AutoAttack's own code, side by side: same model, images and fixed L-inf budget.

    python -m benchmarks.evaluation --versus-autoattack --quick   # 1 repetition (about 8 minutes on 2 cores)
    python -m benchmarks.evaluation --versus-autoattack           # 3 interleaved repetitions

What is compared, on 1,000 of scikit-learn's 8x8 digits (a small CNN trained on the other 797 first):

* ours: the L-inf attacks of the composed `eval=strong` preset (APGD-CE, APGD-T with 3 targets, Square),
  switched to the fixed budget `eps_255`, run as a cascade with `adv_smooth.robustness.batch.evaluate_batch`;
* reference: `pyautoattack.AutoAttack(version="standard")` (APGD-CE, APGD-T with 9 targets, FAB-T, Square
  with 5,000 queries), the field's standard, at the same eps.

Reported: each side's robust accuracy and their difference (goal: within 1 point), and our time over
theirs (goal <= 1.0: fewer targets, a cheaper Square, no FAB, the cascade).
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from adv_smooth.app.build import build_attacks
from adv_smooth.defenses.plain_loop import fit_classifier
from adv_smooth.models.digits_cnn import DigitsCNN, digits_split
from adv_smooth.robustness.batch import evaluate_batch
from benchmarks._setup import compose_config
from benchmarks._timing import format_table, interleaved, load_average, machine_info, summarize, timed

N_TEST = 1000


def trained_model(seed: int = 0) -> tuple[nn.Module, Tensor, Tensor]:
    """The CNN trained for a few seconds on 797 digits; returns it with the 1,000 others."""
    x, y, perm, g = digits_split(seed)
    test, train = perm[:N_TEST], perm[N_TEST:]
    model = fit_classifier(DigitsCNN(), x, y, train, epochs=30, generator=g)
    return model, x[test], y[test]


def strong_linf_attacks(eps_255: float) -> dict[str, Any]:
    """The L-inf half of the `eval=strong` preset, at a fixed budget."""
    cfg = compose_config("digits", "vanilla", ["eval=strong"])
    attacks = OmegaConf.to_container(cfg.eval.attacks, resolve=True)
    return {name: {**a, "budget": "fixed", "eps_255": eps_255} for name, a in attacks.items() if a["norm"] == "linf"}


def ours(model: nn.Module, x: Tensor, y: Tensor, eps_255: float) -> dict[str, Any]:
    attacks = build_attacks(strong_linf_attacks(eps_255))
    for i, attack in enumerate(attacks.values()):
        attack.generator = torch.Generator(device=x.device).manual_seed(i)
    wall, out = timed(lambda: evaluate_batch(model, x, y, attacks, [30.0], cascade=True), x.device)
    robust = out["clean_pred"] == y
    for outcome in out["attacks"].values():
        robust &= outcome["adv_correct"][0] != 0
    return {"wall": wall, "robust_acc": robust.float().mean().item(), "attacks": list(attacks)}


def reference(model: nn.Module, x: Tensor, y: Tensor, eps_255: float) -> dict[str, Any]:
    from pyautoattack import AutoAttack

    adversary = AutoAttack(model, norm="Linf", eps=eps_255 / 255, version="standard", seed=0, device=str(x.device))
    adversary.verbose = False
    wall, (x_adv, _) = timed(lambda: adversary.run_standard_evaluation(x, y, batch_size=N_TEST), x.device)
    with torch.no_grad():
        acc = (model(x_adv).argmax(1) == y).float().mean().item()
    return {"wall": wall, "robust_acc": acc, "attacks": list(adversary.attacks_to_run)}


def run(reps: int = 3, eps_255: float = 16.0, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    load_before = load_average()
    model, x, y = trained_model(seed)
    model, x, y = model.to(device), x.to(device), y.to(device)
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    sides = {"ours": lambda: ours(model, x, y, eps_255), "autoattack": lambda: reference(model, x, y, eps_255)}
    raw = interleaved(reps, sides)
    walls = {k: [r["wall"] for r in v] for k, v in raw.items()}
    ratios = [a / b for a, b in zip(walls["ours"], walls["autoattack"])]
    acc = {k: v[-1]["robust_acc"] for k, v in raw.items()}
    return {
        "benchmark": "ensemble_vs_autoattack",
        "settings": {"reps": reps, "eps_255": eps_255, "images": len(y), "seed": seed, "norm": "linf"},
        "clean_acc": clean,
        "robust_acc": acc,
        "robust_acc_abs_diff": abs(acc["ours"] - acc["autoattack"]),
        "attacks": {k: v[-1]["attacks"] for k, v in raw.items()},
        "wall_s": {k: summarize(v) for k, v in walls.items()},
        "time_ratio_ours_over_autoattack": summarize(ratios),
        "targets": [
            {
                "target": "robust accuracy within 1 point",
                "limit": 0.01,
                "value": abs(acc["ours"] - acc["autoattack"]),
                "status": "pass" if abs(acc["ours"] - acc["autoattack"]) <= 0.01 else "FAIL",
            },
            {
                "target": "time ratio",
                "limit": 1.0,
                "value": summarize(ratios)["median"],
                "status": "pass" if summarize(ratios)["median"] <= 1.0 else "FAIL",
            },
        ],
        "device": device,
        "machine": machine_info(device),
        "load_average_1min_before_after": [load_before, load_average()],
    }


def format_report(r: dict[str, Any]) -> str:
    s = r["settings"]
    rows = [("side", "attacks", "robust acc", "wall s (median)", "spread")]
    for side in ("ours", "autoattack"):
        w = r["wall_s"][side]
        rows.append(
            (
                side,
                "+".join(r["attacks"][side]),
                f"{100 * r['robust_acc'][side]:.2f} %",
                f"{w['median']:.1f}",
                f"{w['spread_pct']:.0f}%",
            )
        )
    ratio = r["time_ratio_ours_over_autoattack"]
    return "\n".join(
        [
            f"eval=strong (L-inf part) vs AutoAttack standard: {s['images']} digits, eps {s['eps_255']}/255, "
            f"{s['reps']} interleaved reps, clean {100 * r['clean_acc']:.2f} %",
            format_table(rows),
            f"|robust acc difference| = {100 * r['robust_acc_abs_diff']:.2f} points (goal <= 1); time ratio ours / "
            f"AutoAttack = {ratio['median']:.2f} (min {ratio['min']:.2f}, max {ratio['max']:.2f}; goal <= 1.0); "
            "GPU: not measured",
        ]
    )
