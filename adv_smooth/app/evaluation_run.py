"""`python -m adv_smooth.evaluate ckpt_path=PATH [overrides]`: robustness of a saved checkpoint.

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

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from adv_smooth.app import result_set
from adv_smooth.app.build import build_robustness_callback, build_trainer
from adv_smooth.app.choices import evaluation_choices
from adv_smooth.app.evaluation_target import ensemble_summary, evaluate_members, from_checkpoints, from_weights
from adv_smooth.app.preflight.targets import check_targets
from adv_smooth.app.provenance import provenance
from adv_smooth.app.results import callback_results, scalar_metrics
from adv_smooth.app.run_dir import refuse_completed
from adv_smooth.app.summary import format_summary, written_to
from adv_smooth.lightning.test_subset import TestSubset, check_test_subset
from adv_smooth.run_record import RunRecord, fields_of
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


def training_config(ckpt_path: Path) -> DictConfig:
    """The config saved by Hydra in the run that wrote `ckpt_path` (run/checkpoints/x.ckpt).

    The run dir may come from someone else: the file must be a YAML mapping, and every `_target_` in it
    must pass `check_targets` before anything is built from it.
    """
    for run in (ckpt_path.parent.parent, ckpt_path.parent):
        saved = run / ".hydra" / "config.yaml"
        if saved.is_file():
            try:
                loaded = OmegaConf.load(saved)
            except Exception as e:  # YAML syntax, undecodable bytes, unreadable file
                raise UserError(f"{saved} is not a readable config ({' '.join(str(e).split())[:200]})") from None
            if not isinstance(loaded, DictConfig):
                raise UserError(f"{saved} is not a config mapping (it holds a {type(loaded).__name__})")
            check_targets(loaded, str(saved))
            return loaded
    raise UserError(
        f"ckpt_path={str(ckpt_path)!r}: no .hydra/config.yaml found in its run dir, so the network it belongs to "
        "is unknown (keep checkpoints inside the run dir that wrote them)"
    )


def apply_overrides(train_cfg: DictConfig, cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Copy the command line's evaluation keys from `cfg` onto the training config."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with open_dict(train_cfg):
        for override in OverridesParser.create().parse_overrides(overrides):
            key = override.key_or_group
            if key == "ckpt_path" or key.startswith("hydra"):
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
    return [hydra.utils.instantiate(bar)]  # a run dir's config passed check_targets before anything was built


def _plain(value: Any) -> Any:
    return OmegaConf.to_object(value) if isinstance(value, ListConfig) else value


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    start = time.time()
    refuse_completed(Path(cfg.trainer.default_root_dir), resuming=False, overwrite=cfg.get("overwrite") is True)
    # Validate the attack settings before reading anything (names, SNR levels, the test subset).
    build_robustness_callback(OmegaConf.to_container(cfg.eval, resolve=True))
    check_test_subset(cfg.eval.get("test_subset"), cfg.eval.get("test_subset_seed"))
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    if cfg.get("weights") is not None:  # any network (models/external.py): the command line's own config
        target = from_weights(cfg)
    elif cfg.get("ckpt_path") is not None:  # our checkpoint(s): each run dir's saved config, vetted
        target = from_checkpoints(cfg, lambda path: apply_overrides(training_config(path), cfg, overrides))
    else:
        raise UserError("give ckpt_path=PATH (a list [A,B,...]: one ensemble) or weights=FILE with model=...")
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
        choices=evaluation_choices(cfg, overrides),  # the trained run's dataset, model, defense
        wall_time_s=round(time.time() - start, 2),
        metrics=scalar_metrics(trainer),
        provenance=provenance(fingerprints=fingerprints),  # the code and libraries that made these numbers
        **fields_of({**info, **callback_results(trainer)}),
        config=OmegaConf.to_container(run_cfg, resolve=True),
    )
    if target.members:  # an ensemble: each member through the same evaluation, in members/<i>/
        record.members = evaluate_members(target, staging, lambda m, d: test_run(run_cfg, m, target.datamodule, d))
        record.wall_time_s = round(time.time() - start, 2)
    if not trainer.is_global_zero:  # another DDP process (`ddp` re-runs this command): rank 0 writes the results
        return record.to_dict()
    results = result_set.commit(out, record).to_dict()  # replaces an earlier evaluation's set only now, whole
    print(format_summary(results))
    if target.members:
        print(ensemble_summary(results))
    print(written_to(out))
    return results
