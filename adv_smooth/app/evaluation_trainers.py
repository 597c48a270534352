"""The Trainers of an evaluation: one pass over the test split per network, its callbacks built as training's are.

`evaluation_trainers` builds one Trainer per network, under the config the evaluation runs under, each with a
fresh robustness callback and test subset (`app/build.py` builds both from the run's `callbacks` nodes, which read
the `eval` settings) and the run's progress bar, writing into a dir of its own. A subset larger than the test
split is refused before any Trainer is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, ListConfig, OmegaConf

from adv_smooth.app.build import build_callback, build_evaluation_callbacks, build_trainer


def evaluation_trainers(run_cfg: DictConfig, datamodule: Any, outs: list[Path]) -> list[pl.Trainer]:
    """A Trainer writing into each of `outs`, under `run_cfg` (the config evaluation runs under), for
    `datamodule`'s test split (loaded: the subset is checked against it first)."""
    # each Trainer its own callbacks (they keep state); an evaluation validates nothing
    tests = [build_evaluation_callbacks(run_cfg, val_subset=0) for _ in outs]
    if tests[0].test_subset.n is not None:
        tests[0].test_subset.test_split(datamodule)
    bar = (run_cfg.get("callbacks") or {}).get("progress_bar")  # the run's own (TQDM by default), as in training
    show_bar = bar is not None and bool(run_cfg.trainer.get("enable_progress_bar", True))  # else none (not Rich's)
    trainers = []
    for out, tested in zip(outs, tests):
        callbacks = [
            tested.test_subset,
            tested.robustness,
            *([build_callback(bar)] if show_bar else []),  # a run dir's config passed check_targets before
        ]
        trainers.append(
            build_trainer(
                {},
                accelerator=run_cfg.trainer.accelerator,
                devices=_plain(run_cfg.trainer.get("devices", 1)),  # several: one shard each, each image counted once
                num_nodes=run_cfg.trainer.get("num_nodes", 1),
                strategy=run_cfg.trainer.get("strategy", "auto"),
                precision=run_cfg.trainer.precision,
                inference_mode=False,
                callbacks=callbacks,
                enable_progress_bar=show_bar,
                enable_model_summary=False,
                enable_checkpointing=False,  # an evaluation saves no weights (and Lightning's checkpoint prints a tip)
                default_root_dir=str(out),
                logger=pl.loggers.TensorBoardLogger(str(out), name="tensorboard", version=""),
            )
        )
    return trainers


def _plain(value: Any) -> Any:
    return OmegaConf.to_object(value) if isinstance(value, ListConfig) else value
