"""Turn a composed config into objects. Shared by training and checkpoint evaluation."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from adv_smooth.data import ImageDataModule
from adv_smooth.defenses import Compose, Defense
from adv_smooth.lightning import RobustClassifier
from adv_smooth.models.speed import apply_perf


def build_defense(cfg: DictConfig) -> Defense:
    """Instantiate every `defense.components.<name>` and chain them (empty = vanilla)."""
    components = cfg.get("components") or {}
    return Compose(hydra.utils.instantiate(c) for c in components.values())


def build_datamodule(cfg: DictConfig) -> ImageDataModule:
    datamodule = hydra.utils.instantiate(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_module(cfg: DictConfig, datamodule: ImageDataModule, defense: Defense) -> RobustClassifier:
    """The network gets its data facts from the datamodule, its options from the defense, speed switches from `perf`."""
    net = hydra.utils.instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        in_channels=datamodule.channels,
        mean=list(datamodule.mean),
        std=list(datamodule.std),
        **defense.model_options,
    )
    net = apply_perf(net, **(cfg.get("perf") or {}))  # channels_last / compile (models/speed.py); absent = off
    optim = cfg.optim
    return RobustClassifier(
        net,
        defense,
        optimizer=hydra.utils.instantiate(optim.optimizer),
        scheduler=hydra.utils.instantiate(optim.scheduler) if optim.get("scheduler") else None,
        finite_check_every=cfg.trainer.get("log_every_n_steps", 10),
    )


def build_list(cfg: DictConfig | None) -> list[Any]:
    """Callbacks / loggers: every entry with a `_target_` (null entries disable a default)."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(c) for c in cfg.values() if c is not None and "_target_" in c]
