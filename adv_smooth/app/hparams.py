"""The hyperparameters each logger records, and the final metrics TensorBoard's HPARAMS tab shows beside them.

The network module saves no hyperparameters of its own (it is handed built objects), so Lightning logged
`{}`. What tells runs apart is the config: the chosen groups and the knobs a study varies. They are
logged before fitting (hparams.yaml is written at the fit's start, so a killed run has it too) and once
more at the end with the final metrics, under `hp/...` names so they do not add points to the training
curves of `val/acc` and `test/acc`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Single settings worth a column, besides every top-level knob of the defense and the optimizer.
KEY_SETTINGS = (
    "seed",
    "dataset.batch_size",
    "dataset.augment",
    "dataset.val_fraction",
    "model.width",
    "model.blocks",
    "trainer.max_epochs",
    "trainer.precision",
    "eval.snr_levels",
    "eval.test_subset",  # the test figures of a run on part of the split are not the whole split's
    "eval.test_subset_seed",
)
_SKIPPED = ("name", "components", "optimizer", "scheduler")


def _value(value: Any) -> bool | int | float | str:
    """TensorBoard takes numbers, strings and booleans: lists become their text, null becomes "null"."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return "null" if value is None else str(value)


def run_hparams(cfg: DictConfig, choices: dict[str, str]) -> dict[str, bool | int | float | str]:
    """`{"defense": "adv", "optim": "sgd", ..., "defense.snr": 33.0, "optim.lr": 0.1, "seed": 0, ...}`."""
    params: dict[str, Any] = {group: choice for group, choice in sorted(choices.items()) if choice != "None"}
    for key in KEY_SETTINGS:
        value = OmegaConf.select(cfg, key, default=None)
        params[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    for group in ("defense", "optim"):
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            continue
        for name in node:
            if str(name).startswith("_") or name in _SKIPPED:
                continue
            value = node[name]
            if not OmegaConf.is_config(value) or OmegaConf.is_list(value):
                params[f"{group}.{name}"] = OmegaConf.to_container(value) if OmegaConf.is_list(value) else value
    return {key: _value(value) for key, value in params.items()}


def final_metrics(results: dict[str, Any]) -> dict[str, float]:
    """Validation and test accuracy and the worst-case robust accuracy at each level, as `hp/...` names."""
    scalars = {**results.get("fit", {}), **results.get("metrics", {})}
    picked = {"val/acc", "test/acc"} | {k for k in scalars if k.startswith("test/worst/") and k.endswith("/acc")}
    out = {f"hp/{key.replace('/', '_')}": float(scalars[key]) for key in sorted(picked) if key in scalars}
    if results.get("best_val_acc") is not None:
        out["hp/best_val_acc"] = float(results["best_val_acc"])
    return out


def log_hparams(
    loggers: Iterable[Any], params: dict[str, Any], metrics: dict[str, float] | None = None, step: int = 0
) -> None:
    """Give every logger the run's hyperparameters; with `metrics`, also TensorBoard's hparams entry.

    Called before fitting without metrics (Lightning then writes them to each logger's hparams.yaml), and
    after testing with them. The TensorBoard writer is closed by then: a new event file in the same
    directory takes the entry, and is closed again.
    """
    from pytorch_lightning.loggers import TensorBoardLogger

    for logger in loggers:
        if metrics is None:
            logger.log_hyperparams(params)
        elif isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics, step)
            logger.experiment.flush()
            logger.experiment.close()
