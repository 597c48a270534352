"""The field's standard defenses beside the study's FGSM training, like for like on scikit-learn's 8x8 digits.

Vanilla, FGSM training (conf/defense/adv.yaml's recipe: half of each batch, truncated-normal magnitudes,
adversarial weight 0.3), PGD training (pgd.yaml's: every image replaced by its PGD example) and TRADES
(trades.yaml's: CE + 6 KL(clean || adversarial), its own KL maximization), all at one budget (14 dB per
image, L-inf), the same network (PreAct ResNet, width 8, two stages), seed, data order and epochs, trained
by the plain loop of `adv_smooth/defenses/plain_loop.py` (the module's own loss, `training_objective`). Judged on the
449 test digits: clean, and under a 10-step PGD at 14 and 11 dB. Robustness, not speed: wall times are
recorded only to size the run.

    python -m benchmarks.baselines_digits [--seeds 0 1] [--out benchmarks/results/baselines_digits.json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from adv_smooth.attacks import FGSM, PGD
from adv_smooth.defenses.adversarial import AdversarialTraining
from adv_smooth.defenses.base import Defense
from adv_smooth.defenses.plain_loop import digits_tensors, train_digits
from adv_smooth.defenses.trades import Trades
from benchmarks._timing import format_table, load_average, machine_info, publish

DEFAULT_OUT = Path("benchmarks/results/baselines_digits.json")
SNR = 14.0
LEVELS = (14.0, 11.0)


def defenses(steps: int) -> dict[str, Defense]:
    """The four recipes at the shared budget (fresh objects: an attack keeps no state between runs)."""
    return {
        "vanilla": Defense(),
        "fgsm": AdversarialTraining(snr=SNR, attack=FGSM(magnitude="truncated_normal")),
        "pgd": AdversarialTraining(fraction=1.0, snr=SNR, adv_weight=1.0, attack=PGD(steps=steps, include_fgsm=False)),
        "trades": Trades(beta=6.0, snr=SNR, attack=PGD(steps=steps)),
    }


def run(seeds: Sequence[int], epochs: int, steps: int) -> dict:
    load_before = load_average()
    xtr, ytr, xte, yte = digits_tensors(size=8)
    results: dict[str, dict] = {}
    for seed in seeds:
        for name, defense in defenses(steps).items():
            start = time.perf_counter()
            model = train_digits(defense, xtr, ytr, seed=seed, epochs=epochs, blocks=(1, 1))
            seconds = time.perf_counter() - start
            row = {"train_s": seconds}
            with torch.no_grad():
                row["clean"] = (model(xte).argmax(1) == yte).float().mean().item()
            for level in LEVELS:
                x = PGD(steps=10, generator=torch.Generator().manual_seed(0)).perturb(model, xte, yte, level)
                with torch.no_grad():
                    row[f"pgd_{level:g}db"] = (model(x).argmax(1) == yte).float().mean().item()
            results.setdefault(name, {})[str(seed)] = row
            print(f"seed {seed} {name}: {row}", flush=True)
    return {
        "snr_db": SNR,
        "epochs": epochs,
        "attack_steps": steps,
        "seeds": list(seeds),
        "results": results,
        **machine_info("cpu"),
        "load_average_1min_before_after": [load_before, load_average()],
    }


def _table(r: dict) -> str:
    keys = ["clean", *(f"pgd_{level:g}db" for level in LEVELS)]
    rows = [("training", "clean %", "PGD-10 14 dB %", "PGD-10 11 dB %", "train s")]
    for name, per_seed in r["results"].items():
        cells = [" / ".join(f"{100 * per_seed[s][k]:.1f}" for s in per_seed) for k in keys]
        rows.append((name, *cells, " / ".join(f"{per_seed[s]['train_s']:.0f}" for s in per_seed)))
    return format_table(rows) + f"\nseeds {' / '.join(map(str, r['seeds']))}, threads {r['threads']}"


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="PGD / TRADES inner steps while training")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = run(args.seeds, args.epochs, args.steps)
    return publish(_table(result), args.out, result)


if __name__ == "__main__":
    main()
