"""`python -m adv_smooth.evaluate ckpt_path=PATH [overrides]`: robustness of a saved checkpoint.

No retraining: the configuration of the run that wrote the checkpoint (its `.hydra/config.yaml`)
rebuilds the same network and test split; the command line's overrides (attacks, SNR levels, data
root, device) are applied on top. Weights load with the weights-only unpickler. Results go to this
evaluation's own run dir as results.json.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict

from adv_smooth.app.build import build_datamodule, build_defense, build_module
from adv_smooth.app.results import callback_results, scalar_metrics
from adv_smooth.app.run_dir import refuse_completed
from adv_smooth.app.summary import format_summary
from adv_smooth.config.targets import check_targets
from adv_smooth.lightning.robustness import from_eval_config
from adv_smooth.utils.checkpoints import load_checkpoint
from adv_smooth.utils.errors import UserError
from adv_smooth.utils.io import write_json_atomic

# Keys a user may change at evaluation; everything else must match the run that trained the weights.
EVAL_KEYS = (
    "eval",
    "dataset.root",
    "dataset.download",
    "dataset.eval_batch_size",
    "trainer.accelerator",
    "trainer.devices",
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
                raise UserError(
                    f"{key} cannot be changed when evaluating a checkpoint (allowed: {', '.join(EVAL_KEYS)})"
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


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    start = time.time()
    refuse_completed(Path(cfg.trainer.default_root_dir), resuming=False, overwrite=cfg.get("overwrite") is True)
    ckpt_path = Path(str(cfg.ckpt_path)).expanduser()
    # Validate the attack settings before reading anything (names, SNR levels).
    from_eval_config(OmegaConf.to_container(cfg.eval, resolve=True))
    checkpoint = load_checkpoint(ckpt_path)
    if "state_dict" not in checkpoint:
        raise UserError(f"ckpt_path={str(ckpt_path)!r} holds no 'state_dict': not a Lightning checkpoint")
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    run_cfg = apply_overrides(training_config(ckpt_path), cfg, overrides)
    check_targets(run_cfg, "the evaluation config")  # the saved config with this command's overrides
    robustness = from_eval_config(
        OmegaConf.to_container(run_cfg.eval, resolve=True),
        val_subset=0,
    )
    pl.seed_everything(run_cfg.seed, workers=True, verbose=False)
    defense = build_defense(run_cfg.defense)  # for the architecture options it implies (e.g. Parseval)
    datamodule = build_datamodule(run_cfg)
    module = build_module(run_cfg, datamodule, defense)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as e:
        raise UserError(
            f"ckpt_path={str(ckpt_path)!r} does not fit the network of its run: {str(e).splitlines()[0]}"
        ) from None
    out = Path(cfg.trainer.default_root_dir)
    trainer = pl.Trainer(
        accelerator=run_cfg.trainer.accelerator,
        devices=1,
        precision=run_cfg.trainer.precision,
        inference_mode=False,
        callbacks=[robustness],
        enable_model_summary=False,
        default_root_dir=str(out),
        logger=pl.loggers.TensorBoardLogger(str(out), name="tensorboard", version=""),
    )
    trainer.test(module, datamodule=datamodule, verbose=False)
    results = {
        "status": "completed",
        "task": "evaluate",
        "ckpt_path": str(ckpt_path.resolve()),
        "seed": run_cfg.seed,
        "choices": {},
        "wall_time_s": round(time.time() - start, 2),
        "metrics": scalar_metrics(trainer),
        **callback_results(trainer),
        "config": OmegaConf.to_container(run_cfg, resolve=True),
    }
    write_json_atomic(out / "results.json", results)
    print(format_summary(results))
    return results
