"""Training task: what one Hydra job does. Thin: building lives in `build`, checks in `config.checks`."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException

from adv_smooth.app.build import build_datamodule, build_defense, build_list, build_module
from adv_smooth.app.results import callback_results, scalar_metrics
from adv_smooth.app.run_dir import refuse_completed
from adv_smooth.app.search import optimized
from adv_smooth.app.summary import format_summary
from adv_smooth.config.checks import check_config
from adv_smooth.config.sweeps import check_sweep
from adv_smooth.lightning.checkpointing import AtomicCheckpointIO
from adv_smooth.lightning.preemption import Preempted
from adv_smooth.utils.checkpoints import check_state_matches, load_checkpoint
from adv_smooth.utils.errors import require
from adv_smooth.utils.io import write_json_atomic


def run_dir(cfg: DictConfig) -> Path:
    return Path(cfg.trainer.default_root_dir)


def resolve_ckpt_path(ckpt_path: str | None, directory: Path) -> str | None:
    """`last` means this run dir's last checkpoint (missing = start fresh, so reruns are idempotent)."""
    if ckpt_path in (None, "", "null"):
        return None
    if ckpt_path == "last":
        last = directory / "checkpoints" / "last.ckpt"
        return str(last) if last.exists() else None
    return str(ckpt_path)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then test the best-on-validation weights; write results.json atomically. Returns it.

    Everything a user can get wrong (values, the resume checkpoint, defense settings) is checked
    before the data is loaded. results.json is written only at the very end, and a stale one from an
    earlier run in this dir is removed first, so a killed run never leaves a results file behind. A
    completed run's dir is only reused to resume it (`ckpt_path`) or with `overwrite=true`.
    """
    check_config(cfg)
    check_sweep(cfg)
    out = run_dir(cfg)
    overwrite = cfg.get("overwrite", False)
    require(isinstance(overwrite, bool), "overwrite", overwrite, "true or false")
    refuse_completed(out, resuming=cfg.get("ckpt_path") not in (None, "", "null"), overwrite=overwrite)
    start = time.time()
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), out)
    resume = load_checkpoint(ckpt_path) if ckpt_path else None  # refuses pickled code before Lightning reads it
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    defense = build_defense(cfg.defense)
    callbacks = build_list(cfg.get("callbacks"))  # before the data too: their constructors check their settings
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a progress bar it was told not to show
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule, defense)
    if resume is not None:
        check_state_matches(resume, module, ckpt_path)
        del resume
    (out / "results.json").unlink(missing_ok=True)
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=build_list(cfg.get("logger")) or False,
        plugins=[AtomicCheckpointIO()],  # checkpoints appear whole under their final name, or not at all
    )
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        fit_metrics = scalar_metrics(trainer)
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        test_metrics: dict[str, Any] = {}
        tested = best if cfg.get("eval", {}).get("checkpoint", "best") == "best" else ""  # last: final weights
        if cfg.get("test", True):
            trainer.test(module, datamodule=datamodule, ckpt_path=tested or None, weights_only=True, verbose=False)
            test_metrics = scalar_metrics(trainer)
    except SIGTERMException:  # Lightning's own handler fired (outside the Preemption callback's window)
        raise Preempted(signal.SIGTERM, None, trainer.current_epoch, trainer.global_step) from None

    results = {
        "status": "completed",
        "seed": cfg.seed,
        "choices": _choices(),
        "best_checkpoint": best,
        "best_epoch": getattr(trainer.checkpoint_callback, "saved_epochs", {}).get(best),  # 0-based, as Lightning
        "tested_checkpoint": tested,  # "" = the final weights
        "epochs": trainer.current_epoch,
        "wall_time_s": round(time.time() - start, 2),
        "fit": fit_metrics,
        "metrics": test_metrics,
        **callback_results(trainer),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    results["optimized"] = optimized(results, cfg)
    write_json_atomic(out / "results.json", results)
    print(format_summary(results))
    return results


def _choices() -> dict[str, str]:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}
