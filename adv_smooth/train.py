"""Training task: what one Hydra job does. Thin: building lives in `build`, checks in `config_checks`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from adv_smooth.build import build_datamodule, build_defense, build_list, build_module
from adv_smooth.config_checks import check_config
from adv_smooth.summary import format_summary
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


def collect_results(trainer: pl.Trainer) -> dict[str, Any]:
    """Scalars Lightning logged at the end, plus whatever callbacks expose through `results()`."""
    results: dict[str, Any] = {}
    for key, value in trainer.callback_metrics.items():
        results[key] = float(value)
    for callback in trainer.callbacks:
        if hasattr(callback, "results"):
            results.update(callback.results())
    return results


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then test the best-on-validation weights; write results.json atomically. Returns it."""
    check_config(cfg)
    out = run_dir(cfg)
    start = time.time()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    defense = build_defense(cfg.defense)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule, defense)
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=build_list(cfg.get("callbacks")), logger=build_list(cfg.get("logger")) or False
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=resolve_ckpt_path(cfg.get("ckpt_path"), out))
    fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    test_metrics: dict[str, Any] = {}
    if cfg.get("test", True):
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True, verbose=False)
        test_metrics = collect_results(trainer)

    results = {
        "status": "completed",
        "seed": cfg.seed,
        "choices": _choices(),
        "best_checkpoint": best,
        "epochs": trainer.current_epoch,
        "wall_time_s": round(time.time() - start, 2),
        "fit": fit_metrics,
        "metrics": test_metrics,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    write_json_atomic(out / "results.json", results)
    print(format_summary(results))
    return results


def _choices() -> dict[str, str]:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}
