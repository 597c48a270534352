"""The hyperparameters each logger records, and the final metrics TensorBoard's HPARAMS tab shows beside them.

The network module saves no hyperparameters of its own (it is handed built objects), so Lightning logged
`{}`. What tells runs apart is the config: the chosen groups and the knobs a study varies. They are
logged before fitting (hparams.yaml is written at the fit's start, so a killed run has it too) and once
more at the end, naming as metrics the run's own `val/acc`, `test/acc` and worst-case curves. The knobs a
researcher varies lead the columns (defense, β, γ, m, snr, lr, epochs, seed), then dataset, model and the test's
SNR levels; booleans are "true" / "false"; plumbing (callbacks, logger, hydra, the attacks' `attack@` choices) is
left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# The knobs a researcher varies, leading TensorBoard's HPARAMS columns in this order (the ones a run has).
LEADING = (
    "defense",
    "defense.beta",
    "defense.gamma",
    "defense.m",
    "defense.snr",
    "optim.lr",
    "trainer.max_epochs",
    "seed",
    "dataset",
    "model",
    "eval.snr_levels",  # the levels of the curves the run's metrics are read from
    "optim",
)
# Checked in HPARAMS by default: TensorBoard shows the first 5 hparams, those marked `differs` first, by name.
KNOBS = LEADING[:8]  # defense, β, γ, m, snr, lr, epochs, seed
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
# Config choices that tell no two studies apart: plumbing, not knobs (the attacks are in eval's choice).
_PLUMBING = ("callbacks", "logger", "hydra", "attack@")


def _value(value: Any) -> int | float | str:
    """TensorBoard takes numbers and strings (a boolean would read 1.0000): booleans become "true" / "false",
    lists their text, null "null"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return value
    return "null" if value is None else str(value)


def run_hparams(cfg: DictConfig, choices: dict[str, str]) -> dict[str, int | float | str]:
    """`{"defense": "adv", "defense.beta": ..., "optim.lr": 0.1, ..., "seed": 0, "dataset": ..., ...}`: the knobs a
    researcher varies first (`LEADING`, every one of them, "null" where the run has none), then the other groups
    chosen and settings; no plumbing (`_PLUMBING`)."""
    params: dict[str, Any] = {
        group: choice
        for group, choice in sorted(choices.items())
        if choice != "None" and not group.startswith(_PLUMBING)
    }
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
    # Every run names every knob (a blank where its defense has none): TensorBoard takes one run's column list for
    # all the runs of a logdir, and would otherwise drop γ, m, k ... from the comparison.
    for key, blank in {**dict.fromkeys(LEADING), **defense_knobs()}.items():
        params.setdefault(key, blank)
    order = [k for k in LEADING if k in params] + [k for k in params if k not in LEADING]
    return {key: _value(params[key]) for key in order}


@cache
def defense_knobs() -> dict[str, float | None]:
    """`defense.<knob>` for every top-level knob of every shipped defense preset (conf/defense/), with the blank a run
    without it logs: NaN for a number (the column stays numeric in TensorBoard, with its range filter), else null."""
    from adv_smooth.utils.conf_dir import config_dir

    knobs: dict[str, float | None] = {}
    for preset in sorted((Path(config_dir()) / "defense").glob("*.yaml")):
        for name, value in OmegaConf.to_container(OmegaConf.load(preset)).items():
            if name in _SKIPPED or name == "defaults" or isinstance(value, (dict, list)):
                continue
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric or f"defense.{name}" not in knobs:
                knobs[f"defense.{name}"] = math.nan if numeric else None
    return knobs


def _absent(value: Any) -> bool:
    return value in (None, "null") or (isinstance(value, float) and math.isnan(value))


def final_metrics(results: dict[str, Any]) -> dict[str, float]:
    """Validation and test accuracy and the worst-case robust accuracy at each level, under the names of the
    scalars the run logged (`val/acc`, `test/worst/snr20/acc`): HPARAMS reads each metric's last value from the
    run's own curve, and no chart of a single dot is added."""
    scalars = {**results.get("fit", {}), **results.get("metrics", {})}
    picked = {"val/acc", "test/acc"} | {k for k in scalars if k.startswith("test/worst/") and k.endswith("/acc")}
    return {key: float(scalars[key]) for key in sorted(picked) if key in scalars}


def log_hparams(
    loggers: Iterable[Any], params: dict[str, Any], metrics: dict[str, float] | None = None, step: int = 0
) -> None:
    """Give every logger the run's hyperparameters; with `metrics`, also TensorBoard's hparams entry.

    Called before fitting without metrics (Lightning then writes them to each logger's hparams.yaml), and
    after testing with them. The entry names the metrics (scalars the run already logged) without logging them
    again, as Lightning's `log_hyperparams` would: each would be a chart of one dot heading the SCALARS tab. The
    TensorBoard writer is closed by then: a new event file in the same directory takes the entry, and is closed
    again.
    """
    from pytorch_lightning.loggers import TensorBoardLogger
    from torch.utils.tensorboard.summary import hparams

    for logger in loggers:
        if metrics is None:
            logger.log_hyperparams(params)
        elif isinstance(logger, TensorBoardLogger):
            experiment, start, end = hparams(params, metrics)
            _lead_with_knobs(experiment, [k for k in KNOBS if not _absent(params.get(k))])
            writer = logger.experiment._get_file_writer()
            for summary in (experiment, start, end):
                writer.add_summary(summary, step)
            logger.experiment.flush()
            logger.experiment.close()


def _lead_with_knobs(experiment: Any, knobs: Iterable[str]) -> None:
    """Mark `knobs` as differing in the hparams experiment summary (in place): TensorBoard sorts the columns by
    `differs`, then by name, and checks the first five, so the knobs a researcher varies are the ones shown (it
    would otherwise show dataset.augment, dataset.batch_size ... alphabetically first)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    value = experiment.value[0]
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    wanted = set(knobs)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in wanted
    value.metadata.plugin_data.content = data.SerializeToString()
