"""The README's figure: one digits model's robustness curves under every kind of attack the tool has.

    python -m benchmarks.curves          # about a minute on 2 CPU cores; writes docs/robustness_curves.png

The model is `benchmarks.ensemble`'s small CNN on scikit-learn's 8x8 digits (trained here in seconds, on
797 images; the 1,000 others are attacked). Per-image SNR budgets at 40 ... 15 dB: FGSM, PGD-10 and APGD-100
in the L-inf cube, APGD-100 in the L2 ball, their per-image worst case, and FMN's minimal-SNR curve (L2),
computed by the same engine (`adv_smooth.robustness.Evaluator`) and figure code the training callback uses. The numbers
go to benchmarks/results/curves.json.
"""

from __future__ import annotations

from pathlib import Path

import torch

from adv_smooth.attacks import FGSM, PGD
from adv_smooth.attacks.apgd import APGD
from adv_smooth.attacks.fmn import FMN
from adv_smooth.robustness.curves import accuracy_vs_snr_figure, save_figure
from adv_smooth.robustness.evaluator import Evaluator
from adv_smooth.utils.io import write_json_atomic
from benchmarks._timing import machine_info
from benchmarks.ensemble import trained_model

LEVELS = [40.0, 35.0, 30.0, 25.0, 20.0, 15.0]
FIGURE = Path("docs/robustness_curves.png")
OUT = Path("benchmarks/results/curves.json")


def main() -> dict:
    model, x, y = trained_model()
    g = torch.Generator
    attacks = {
        "fgsm": FGSM(),
        "pgd": PGD(include_fgsm=False, generator=g().manual_seed(0)),
        "apgd": APGD(generator=g().manual_seed(1)),
        "apgd_l2": APGD(norm="l2", generator=g().manual_seed(2)),
        "fmn_l2": FMN(norm="l2"),
    }
    engine = Evaluator(attacks, LEVELS)  # the random attacks bring their own generators: the numbers stay put
    summary = engine.summarize(engine.run(model, [(x, y)]))
    save_figure(accuracy_vs_snr_figure(summary), FIGURE)
    result = {"benchmark": "curves", "levels_db": LEVELS, "summary": summary, "machine": machine_info("cpu")}
    write_json_atomic(OUT, result)
    for name, entry in summary["attacks"].items():
        print(f"{name:<8}", " ".join(f"{100 * v:6.2f}" for v in entry["acc"].values()))
    print("worst   ", " ".join(f"{100 * v:6.2f}" for v in summary["worst"]["acc"].values()))
    print(
        f"median minimal SNR (FMN, L2): {summary['attacks']['fmn_l2']['min_snr']['median_db']:.2f} dB; "
        f"warnings: {[w['check'] for w in summary['honesty']]}; wrote {FIGURE} and {OUT}"
    )
    return result


if __name__ == "__main__":
    main()
