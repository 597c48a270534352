"""`eval=autoattack` against AutoAttack's own code (pyautoattack, version="standard"), side by side: same network,
same images, same fixed budget; robust accuracy (goal: within 0.3 points) and wall time of each.

    python -m benchmarks.autoattack --run RUN_DIR [--norm linf|l2] [--images N] [--device cuda]
    python -m benchmarks.autoattack --smoke          # a tiny CNN, 32 images, shortened attacks: the script runs

The network is the run's own (its config and tested weights, `app/transfer_run.load_network`); ours is the
composed `eval=autoattack` / `eval=autoattack_l2` preset run by the evaluation engine (`robustness/evaluator.py`,
a cascade), the reference `pyautoattack.AutoAttack(version="standard")` at the preset's budget. Writes
benchmarks/results/autoattack[_l2].json (or --out).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from adv_smooth.app.build import build_attacks
from adv_smooth.app.presets import load_preset
from adv_smooth.robustness.evaluator import Evaluator
from benchmarks._timing import machine_info, publish, sync

RESULTS = Path(__file__).parent / "results"


def ours(model: nn.Module, x: Tensor, y: Tensor, preset: dict[str, Any], batch: int) -> dict[str, Any]:
    engine = Evaluator(build_attacks(preset["attacks"]), preset["snr_levels"], cascade=True, sanity_snr_db=None)
    sync(x.device)
    start = time.perf_counter()
    records = engine.run(model, ((x[i : i + batch], y[i : i + batch]) for i in range(0, len(y), batch)))
    sync(x.device)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "robust_acc": records.worst()[None], "clean_acc": float(records.clean.mean())}


def reference(model: nn.Module, x: Tensor, y: Tensor, norm: str, eps: float, batch: int, smoke: bool) -> dict[str, Any]:
    from pyautoattack import AutoAttack

    name = "Linf" if norm == "linf" else "L2"
    adversary = AutoAttack(model, norm=name, eps=eps, version="standard", seed=0, device=str(x.device))
    if smoke:  # the same four attacks, shortened like ours
        adversary.apgd.n_iter = adversary.apgd_targeted.n_iter = adversary.fab.n_iter = 5
        adversary.square.n_queries = 50
    sync(x.device)
    start = time.perf_counter()
    x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=batch)
    sync(x.device)
    wall = time.perf_counter() - start
    with torch.no_grad():
        acc = torch.cat([model(x_adv[i : i + batch]).argmax(1) == y[i : i + batch] for i in range(0, len(y), batch)])
    return {"wall_s": wall, "robust_acc": float(acc.float().mean()), "attacks": list(adversary.attacks_to_run)}


def _smoke_problem(device: str) -> tuple[nn.Module, Tensor, Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(50):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[200:]), y[200:]).backward()
        opt.step()
    return net.eval().to(device), x[:32].to(device), y[:32].to(device)


def _run_problem(run: str, images: int | None, device: str) -> tuple[nn.Module, Tensor, Tensor]:
    from adv_smooth.app.transfer_run import load_network
    from adv_smooth.reporting.jobs import find_jobs

    (job,) = [j for j in find_jobs([run]) if j.status == "completed"]
    net, datamodule = load_network(job)
    x, y = datamodule.splits.test
    x, y = (x[:images], y[:images]) if images else (x, y)
    return net.to(device), (x.float() / 255 if x.dtype == torch.uint8 else x).to(device), y.to(device)


def run(run_dir: str | None, norm: str, images: int | None, device: str, smoke: bool, batch: int) -> dict[str, Any]:
    name = "autoattack" if norm == "linf" else "autoattack_l2"
    preset = load_preset(name)
    if smoke:
        for attack in preset["attacks"].values():
            for key, value in (("steps", 5), ("queries", 50)):
                if key in attack:
                    attack[key] = value
        model, x, y = _smoke_problem(device)
    else:
        model, x, y = _run_problem(run_dir, images, device)
    eps = preset["eps_255"] / 255 if norm == "linf" else preset["radius"]
    sides = {"ours": ours(model, x, y, preset, batch), "autoattack": reference(model, x, y, norm, eps, batch, smoke)}
    diff = abs(sides["ours"]["robust_acc"] - sides["autoattack"]["robust_acc"])
    return {
        "benchmark": f"eval={name} vs pyautoattack standard",
        "settings": {"run": run_dir, "norm": norm, "eps": eps, "images": len(y), "smoke": smoke, "batch": batch},
        **sides,
        "robust_acc_abs_diff_points": 100 * diff,
        "time_ratio_ours_over_autoattack": sides["ours"]["wall_s"] / sides["autoattack"]["wall_s"],
        "target": {"limit_points": 0.3, "status": "pass" if 100 * diff <= 0.3 else "FAIL"},
        "device": device,
        "machine": machine_info(device),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.autoattack", description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="a completed run directory (its network and test split)")
    parser.add_argument("--norm", choices=("linf", "l2"), default="linf")
    parser.add_argument("--images", type=int, default=None, help="the first N test images (default: all)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.smoke and not args.run:
        parser.error("--run RUN_DIR is required (or --smoke)")
    result = run(args.run, args.norm, args.images, args.device, args.smoke, args.batch)
    out = args.out or RESULTS / f"autoattack{'' if args.norm == 'linf' else '_l2'}{'_smoke' if args.smoke else ''}.json"
    o, a = result["ours"], result["autoattack"]
    publish(
        f"{result['benchmark']} on {result['settings']['images']} images, eps {result['settings']['eps']:.4g}: "
        f"ours {100 * o['robust_acc']:.2f} % in {o['wall_s']:.1f} s, AutoAttack {100 * a['robust_acc']:.2f} % in "
        f"{a['wall_s']:.1f} s; |diff| {result['robust_acc_abs_diff_points']:.2f} points ({result['target']['status']})",
        out,
        result,
    )


if __name__ == "__main__":
    main()
