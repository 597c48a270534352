"""The number a hyperparameter search maximizes, computed from validation metrics only.

A search that reads test metrics overfits the test set, so `objective` looks only at the `fit` section
of a job's results (the scalars at the end of training: `val/acc`, `val/fgsm/snr33/acc`, ...), never at
`metrics` (the test split). Robustness alone is a poor target: strong regularization buys robust accuracy
with clean accuracy, and a search happily drifts there. Hence a floor on the clean validation accuracy:
trials below it score `clean - floor` (< 0), which ranks every one of them below every feasible trial
while still telling the sampler which infeasible trials came closest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from adv_smooth.utils.errors import UserError

DEFAULTS = {"metric": "val/fgsm/snr33/acc", "clean_metric": "val/acc", "clean_floor": 0.0}


def _value(fit: Mapping[str, Any], key: str) -> float:
    if not key.startswith("val/"):
        raise UserError(f"objective metric {key!r} is invalid: a search may only read validation metrics (val/...)")
    if key not in fit:
        available = ", ".join(sorted(k for k in fit if k.startswith("val/"))) or "none"
        raise UserError(
            f"objective metric {key!r} was not logged during fit (validation metrics available: {available}); "
            "enable the validation attack in the robustness callback, or set objective.metric"
        )
    value = float(fit[key])
    if not math.isfinite(value):
        raise UserError(f"objective metric {key!r} is {value}, not a finite number")
    return value


def objective(results: Mapping[str, Any], cfg: Mapping[str, Any]) -> float:
    """Robust validation accuracy if the clean validation accuracy reaches the floor, else clean - floor.

    `cfg.objective` (all optional): `metric` (default `val/fgsm/snr33/acc`), `clean_metric` (`val/acc`),
    `clean_floor` (0.0). Accuracies are fractions in [0, 1] as logged.
    """
    settings = {**DEFAULTS, **dict(cfg.get("objective") or {})}
    fit = results.get("fit") or {}
    floor = float(settings["clean_floor"])
    robust = _value(fit, str(settings["metric"]))  # read even when unused: a misconfigured search fails at once
    clean = _value(fit, str(settings["clean_metric"]))
    return robust if clean >= floor else clean - floor


def optimized(results: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, float]:
    """`results["optimized"]`: {cfg.optimized_metric: objective(...)} when a metric is optimized, else {}."""
    name = cfg.get("optimized_metric")
    return {str(name): objective(results, cfg)} if name else {}
