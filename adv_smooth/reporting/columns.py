"""The report's defense columns: the defense, then only the knobs that matter for the defenses present.

A sweep of `defense=vanilla,adv` differs by the adversarial budget (`defense.snr`), a knob neither β, γ nor m
describes; columns of zeros for knobs no row has hid the one that tells the rows apart. A knob's column is
shown when some job sets it to something other than "off": β, γ, m (loss weights, smoothness order) are off
at 0, the training budgets (`snr`, `eps_255`) when unset. A row whose defense lacks a shown knob reads 0 for
a weight (an absent loss term weighs nothing) and – for a budget (there is none).

Beside a test table, the `val` column is the validation accuracy of the weights the test columns measure:
the best checkpoint's when it was tested (`eval.checkpoint=best`), the last epoch's otherwise.
"""

from __future__ import annotations

from typing import Any

from adv_smooth.reporting.jobs import Job

MISSING = "–"
# column -> (key under `defense`, its "off" value: what a defense without the knob has)
KNOBS: dict[str, tuple[str, Any]] = {
    "β": ("beta", 0),
    "γ": ("gamma", 0),
    "m": ("m", 0),
    "snr": ("snr", None),
    "eps_255": ("eps_255", None),
}
# The hyperparameters these columns show (the grouping adds no second column for them).
SOURCES = {"choice:defense", "defense.name", *(f"defense.{key}" for key, _ in KNOBS.values())}


def number(value: Any) -> str:
    """A label's text: numbers in their shortest form (`0.01`, `2`), anything else as text, None as –."""
    if value is None or value == MISSING:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:g}"


def defense_values(job: Job) -> dict[str, Any]:
    """The job's defense (its Hydra choice) and every knob of `KNOBS`, the off value where the defense has none."""
    defense = job.config.get("defense") or {}
    values: dict[str, Any] = {"defense": job.choices.get("defense") or str(defense.get("name", "?"))}
    for column, (key, off) in KNOBS.items():
        value = defense.get(key)
        values[column] = off if value is None else value
    return values


def defense_columns(values: list[dict[str, Any]]) -> list[str]:
    """`defense`, then the knobs some job sets to something other than off, in `KNOBS` order."""
    return ["defense", *(c for c, (_, off) in KNOBS.items() if any(v[c] != off for v in values))]


def is_off(column: str, text: str) -> bool:
    """Whether a label cell says the knob is off (legends and notes leave such knobs out)."""
    return column in KNOBS and text == number(KNOBS[column][1])


def tested_val_acc(job: Job) -> float | None:
    """The validation accuracy of the tested weights (see above); None for a run that tested the best checkpoint
    but did not record its score (results.json without `best_val_acc`)."""
    if job.results.get("tested_checkpoint"):  # the best checkpoint's weights
        score = job.results.get("best_val_acc")
        return float(score) if isinstance(score, (int, float)) else None
    return job.scalars().get("val/acc")  # the final weights: the last epoch's validation
