"""Synthetic sweep jobs with per-image records, written with the project's own writers.

`write_records_job` draws each image's outcome (correct clean, then surviving each attack level) with a
given probability, saves the records with `Records.save` and derives results.json's numbers from them
with the same names the evaluation logs (`curves.scalars`), so the report reads exactly what a real sweep
leaves behind, without training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from adv_smooth.robustness.curves import scalars
from adv_smooth.robustness.honesty import level_key
from adv_smooth.robustness.records import AttackRecords, Records

LEVELS = (50.0, 33.0)


def sweep_labels(n: int) -> np.ndarray:
    """The labels of a test set of `n` images (fixed: every job evaluated on it sees the same ones)."""
    return np.random.default_rng(n).integers(0, 10, n)


def draw_records(
    rng: np.random.Generator,
    n: int,
    clean_p: float,
    robust_p: dict[str, dict[float, float]],
    min_snr: str | None = None,
) -> Records:
    """Labels 0..9, the same for every job of `n` images (one test set, as in a real sweep: the report pairs
    only records of the same images); an image is correct clean with probability clean_p, then, per attack and
    level (weak to strong), stays correct with probability robust_p / clean_p given it survived the weaker level."""
    label = sweep_labels(n)
    clean = rng.random(n) < clean_p
    records = Records(index=np.arange(n), label=label, clean_pred=np.where(clean, label, (label + 1) % 10))
    for name, by_level in robust_p.items():
        levels = sorted(by_level, reverse=True)
        alive, rows, previous = clean.copy(), [], clean_p
        for level in levels:
            alive &= rng.random(n) < by_level[level] / previous
            previous = by_level[level]
            rows.append(np.where(clean, alive.astype(np.int8), -1))
        adv = np.stack(rows).astype(np.int8)
        measured = np.where(adv >= 0, np.array(levels, dtype=np.float32)[:, None], np.nan).astype(np.float32)
        minimal = None
        if name == min_snr:  # a minimum-norm attack: minimal SNRs (drawn apart from the per-level outcomes)
            minimal = np.where(clean, rng.normal(35.0, 6.0, n), np.inf).astype(np.float32)
            minimal[clean & (rng.random(n) < 0.05)] = -np.inf  # never broken
        records.attacks[name] = AttackRecords(list(levels), adv, measured, minimal)
    return records


def summary_of(records: Records) -> dict[str, Any]:
    """The robustness block results.json holds (the parts the report reads)."""
    attacks = {}
    for name, rec in records.attacks.items():
        acc = records.accuracy(name)
        running, cumulative = records.clean.copy(), {}
        for level, mask in records.correct(name).items():
            running &= mask
            cumulative[level_key(level)] = float(running.mean())
        attacks[name] = {
            "levels": rec.levels,
            "acc": {level_key(lv): v for lv, v in acc.items()},
            "cumulative_acc": cumulative,
            "measured_snr_db": {level_key(lv): float(lv) for lv in rec.levels},
        }
    return {
        "n": records.n,
        "clean_acc": float(records.clean.mean()),
        "cascade": False,
        "attacks": attacks,
        "worst": {"acc": {level_key(lv): v for lv, v in records.worst().items()}},
        "records": "per_image_test.npz",
    }


def write_records_job(
    root: Path,
    num: int,
    records: Records,
    *,
    seed: int,
    defense: str,
    knobs: dict[str, Any] | None = None,
    dataset: str = "digits",
    choices: dict[str, str] | None = None,
    dataset_config: dict[str, Any] | None = None,
) -> Path:
    """A completed job directory: .hydra/overrides.yaml, per_image_test.npz and results.json."""
    knobs = knobs or {}
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    overrides = [f"defense={defense}", f"seed={seed}", *(f"defense.{k}={v}" for k, v in knobs.items())]
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    records.save(job / "per_image_test.npz")
    summary = summary_of(records)
    metrics = {"test/acc": summary["clean_acc"], **scalars(summary, "test")}
    config = {
        "seed": seed,
        "trainer": {"max_epochs": 3, "default_root_dir": str(job)},
        "dataset": {"name": dataset, "augment": False, "unaugmented_fraction": 0.0, **(dataset_config or {})},
        "defense": {"name": defense, **knobs},
    }
    results = {
        "status": "completed",
        "seed": seed,
        "choices": {"dataset": dataset, "defense": defense, **(choices or {})},
        "metrics": metrics,
        "robustness": {"test": summary},
        "config": config,
    }
    (job / "results.json").write_text(json.dumps(results))
    return job
