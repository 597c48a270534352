"""`python -m adv_smooth.evaluate ckpt=PATH [overrides]`: robustness of a saved checkpoint.

No retraining: the configuration of the run that wrote the checkpoint (its `.hydra/config.yaml`)
rebuilds the same network and test split; the command line's overrides (attacks, SNR levels, data
root, device) are applied on top. Weights load with the weights-only unpickler. Results go to this
evaluation's own run dir as results.json. A list of checkpoints is one ensemble, evaluated beside each of
its members, and `weights=FILE model=...` evaluates a network that is not one of our checkpoints: what is
evaluated is built in `app/evaluation_target.py`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from adv_smooth.app import result_set
from adv_smooth.app.build import build_callback, build_robustness_callback, build_trainer
from adv_smooth.app.choices import evaluation_choices
from adv_smooth.app.evaluation_target import (
    Evaluated,
    checkpoint_paths,
    ensemble_summary,
    from_checkpoints,
    from_weights,
    load_checkpoints,
    saved_run,
)
from adv_smooth.app.provenance import provenance
from adv_smooth.app.results import callback_results, scalar_metrics
from adv_smooth.app.run_dir import refuse_completed
from adv_smooth.app.summary import format_summary, written_to
from adv_smooth.lightning.test_subset import TestSubset, check_test_subset
from adv_smooth.run_record import Member, RunRecord, fields_of
from adv_smooth.utils.errors import UserError
from adv_smooth.utils.ranks import launched_rank_zero

# Keys a user may change at evaluation; everything else must match the run that trained the weights.
EVAL_KEYS = (
    "eval",
    "dataset.root",
    "dataset.download",
    "dataset.eval_batch_size",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.precision",
    "seed",
)


def apply_overrides(train_cfg: DictConfig, cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Copy the command line's evaluation keys from `cfg` onto the training config."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with open_dict(train_cfg):
        for override in OverridesParser.create().parse_overrides(overrides):
            key = override.key_or_group
            if key == "ckpt" or key.startswith("hydra"):
                continue
            if not any(key == k or key.startswith(k + ".") for k in EVAL_KEYS):
                subset = " (part of the test split: eval.test_subset=N)" if key.startswith("trainer.limit_") else ""
                raise UserError(
                    f"{key} cannot be changed when evaluating a checkpoint{subset} (allowed: {', '.join(EVAL_KEYS)})"
                )
            if override.is_delete():
                parent, _, leaf = key.rpartition(".")
                node = OmegaConf.select(train_cfg, parent) if parent else train_cfg
                if node is not None and leaf in node:
                    del node[leaf]
            else:
                OmegaConf.update(train_cfg, key, OmegaConf.select(cfg, key), merge=False)
        if "eval" not in train_cfg:
            train_cfg.eval = cfg.eval
        train_cfg.trainer.default_root_dir = cfg.trainer.default_root_dir
    return train_cfg


def test_run(run_cfg: DictConfig, module: pl.LightningModule, datamodule: Any, out: Path) -> pl.Trainer:
    """The test split through `module` with a fresh robustness callback writing into `out`; returns the trainer."""
    robustness = build_robustness_callback(
        OmegaConf.to_container(run_cfg.eval, resolve=True),
        val_subset=0,
    )
    bar = _progress_bar(run_cfg)
    subset = TestSubset(run_cfg.eval.get("test_subset"), run_cfg.eval.get("test_subset_seed"))
    trainer = build_trainer(
        {},
        accelerator=run_cfg.trainer.accelerator,
        devices=_plain(run_cfg.trainer.get("devices", 1)),  # several: one shard each, each image counted once
        num_nodes=run_cfg.trainer.get("num_nodes", 1),
        strategy=run_cfg.trainer.get("strategy", "auto"),
        precision=run_cfg.trainer.precision,
        inference_mode=False,
        callbacks=[subset, robustness, *bar],
        enable_progress_bar=bool(bar),
        enable_model_summary=False,
        enable_checkpointing=False,  # an evaluation saves no weights (and Lightning's default checkpoint prints a tip)
        default_root_dir=str(out),
        logger=pl.loggers.TensorBoardLogger(str(out), name="tensorboard", version=""),
    )
    trainer.test(module, datamodule=datamodule, verbose=False)
    return trainer


def _progress_bar(run_cfg: DictConfig) -> list[Any]:
    """The run's own progress bar (`callbacks.progress_bar`, TQDM by default), so evaluation looks like training:
    left to itself, Lightning shows Rich's bar when rich is installed. A run without one gets none."""
    bar = (run_cfg.get("callbacks") or {}).get("progress_bar")
    if bar is None or not run_cfg.trainer.get("enable_progress_bar", True):
        return []
    return [build_callback(bar)]  # a run dir's config passed check_targets before anything was built


def _plain(value: Any) -> Any:
    return OmegaConf.to_object(value) if isinstance(value, ListConfig) else value


def evaluate_members(target: Evaluated, out: Path) -> list[Member]:
    """Each member through the same evaluation as the ensemble (records and figure in `out/members/<i>/`)."""
    members = []
    for i, (path, module) in enumerate(target.members):
        trainer = test_run(target.run_cfg, module, target.datamodule, out / "members" / str(i))
        blocks = fields_of(callback_results(trainer), Member, f"member {i}'s results")
        members.append(Member(ckpt_path=path, metrics=scalar_metrics(trainer), **blocks))
    return members


def _chose_eval(overrides: list[str]) -> bool:
    return any(o.lstrip("+~").split("=")[0] == "eval" for o in overrides)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """One evaluation job. Each fact is found once here and passed down: the command's overrides, the checkpoint
    paths, each checkpoint's run (its saved config, vetted, and its choices), the loaded weights."""
    from hydra.core.hydra_config import HydraConfig

    start = time.time()
    refuse_completed(Path(cfg.trainer.default_root_dir), resuming=False, overwrite=cfg.get("overwrite") is True)
    # Validate the attack settings before reading anything (names, SNR levels, the test subset).
    build_robustness_callback(OmegaConf.to_container(cfg.eval, resolve=True))
    check_test_subset(cfg.eval.get("test_subset"), cfg.eval.get("test_subset_seed"))
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    if cfg.get("weights") is not None:  # any network (models/external.py): the command line's own config
        target, runs = from_weights(cfg), []
    else:  # our checkpoint(s): each run dir's saved config, vetted once, this command's overrides on top
        paths = checkpoint_paths(cfg.ckpt)
        checkpoints = load_checkpoints(paths)
        runs = [saved_run(path) for path in paths]
        target = from_checkpoints(paths, checkpoints, [apply_overrides(run.config, cfg, overrides) for run in runs])
    run_cfg = target.run_cfg
    subset = TestSubset(run_cfg.eval.get("test_subset"), run_cfg.eval.get("test_subset_seed"))
    if subset.n is not None:  # the data is loaded: a subset larger than the split is refused before the Trainer
        subset.test_split(target.datamodule)
    out = Path(cfg.trainer.default_root_dir)
    staging = result_set.prepare(out) if launched_rank_zero() else result_set.staging_dir(out)
    trainer = test_run(run_cfg, target.module, target.datamodule, staging)  # the whole result set, moved in at the end
    info = dict(target.info)
    fingerprints = info.pop("split_fingerprints", None)
    record = RunRecord(
        status="completed",
        task="evaluate",
        seed=run_cfg.seed,
        choices=evaluation_choices([run.choices for run in runs], _chose_eval(overrides)),  # the trained run's
        wall_time_s=round(time.time() - start, 2),
        metrics=scalar_metrics(trainer),
        provenance=provenance(fingerprints=fingerprints),  # the code and libraries that made these numbers
        **fields_of({**info, **callback_results(trainer)}),
        config=OmegaConf.to_container(run_cfg, resolve=True),
    )
    if target.members:  # an ensemble: each member through the same evaluation, in members/<i>/
        record.members = evaluate_members(target, staging)
        record.wall_time_s = round(time.time() - start, 2)
    if not trainer.is_global_zero:  # another DDP process (`ddp` re-runs this command): rank 0 writes the results
        return record.to_dict()
    results = result_set.commit(out, record).to_dict()  # replaces an earlier evaluation's set only now, whole
    print(format_summary(results))
    if target.members:
        print(ensemble_summary(results))
    print(written_to(out))
    return results
