"""Turn a composed config into objects. Shared by training and checkpoint evaluation."""

from __future__ import annotations

import re
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from adv_smooth.app.failures import unknown_option
from adv_smooth.config.devices import check_devices
from adv_smooth.data import ImageDataModule
from adv_smooth.defenses import Compose, Defense
from adv_smooth.lightning import RobustClassifier
from adv_smooth.lightning.distributed import carry_back
from adv_smooth.models.speed import apply_perf, resolve_perf
from adv_smooth.utils.errors import UserError


def build_defense(cfg: DictConfig) -> Defense:
    """Instantiate every `defense.components.<name>` and chain them (empty = vanilla)."""
    components = cfg.get("components") or {}
    return Compose(hydra.utils.instantiate(c) for c in components.values())


def build_datamodule(cfg: DictConfig, load: bool = True) -> ImageDataModule:
    """The `dataset` group's data module; its constructor checks the options and reads no file, so `load=False`
    validates them before anything slow (the Trainer, a download) happens; `load_data` then reads the files."""
    datamodule = instantiate_literal(cfg.dataset)
    return load_data(datamodule) if load else datamodule


def instantiate_literal(node: DictConfig) -> Any:
    """`hydra.utils.instantiate(node)`, except that a value holding `${` once resolved is passed as it is.

    An environment value must be taken literally (`ADV_SMOOTH_DATA='/data/${USER}'` names that folder), but
    Hydra's `instantiate` resolves the config again after the first resolution, so the `${oc.env:...}` that such
    a value brought in would be resolved in turn. Those values go to the constructor directly.
    """
    resolved = OmegaConf.to_container(node, resolve=True)
    literal = {k: v for k, v in resolved.items() if isinstance(v, str) and "${" in v and not str(k).startswith("_")}
    if not literal:
        return hydra.utils.instantiate(node)
    rest = OmegaConf.create({k: v for k, v in resolved.items() if k not in literal})
    return hydra.utils.instantiate(rest, _partial_=True)(**literal)


def load_data(datamodule: ImageDataModule) -> ImageDataModule:
    """Download if asked and missing, decode, split: what every entry point does before building the network."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_module(
    cfg: DictConfig, datamodule: ImageDataModule, defense: Defense, trainer: pl.Trainer | None = None
) -> RobustClassifier:
    """The network gets its data facts from the datamodule, its options from the defense, speed switches from `perf`
    (`auto` decided for `trainer`'s device and planned steps; without a trainer, `auto` is off)."""
    net = hydra.utils.instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        in_channels=datamodule.channels,
        mean=list(datamodule.mean),
        std=list(datamodule.std),
        **defense.model_options,
    )
    perf = resolve_perf(**(cfg.get("perf") or {}), **_run_facts(trainer, datamodule))
    net = apply_perf(net, **perf)  # channels_last / compile (models/speed.py); absent = off
    optim = cfg.optim
    return RobustClassifier(
        net,
        defense,
        optimizer=hydra.utils.instantiate(optim.optimizer),
        scheduler=hydra.utils.instantiate(optim.scheduler) if optim.get("scheduler") else None,
        finite_check_every=cfg.trainer.get("log_every_n_steps", 10),
    )


def _run_facts(trainer: pl.Trainer | None, datamodule: Any) -> dict[str, Any]:
    """The device and the planned optimizer steps `resolve_perf` decides `auto` from (none without a trainer)."""
    if trainer is None:
        return {}
    steps = None
    train_set, batch_size = getattr(datamodule, "train_set", None), getattr(datamodule, "batch_size", None)
    if train_set is not None and batch_size and trainer.max_epochs is not None and trainer.max_epochs > 0:
        steps = -(-len(train_set) // (batch_size * trainer.world_size)) * trainer.max_epochs
    return {"device": trainer.strategy.root_device, "planned_steps": steps}


def build_list(cfg: DictConfig | None) -> list[Any]:
    """Callbacks / loggers: every entry with a `_target_` (null entries disable a default)."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(c) for c in cfg.values() if c is not None and "_target_" in c]


def build_trainer(cfg: DictConfig | dict[str, Any], **objects: Any) -> pl.Trainer:
    """The `trainer` config's class (`pl.Trainer` by default) with `objects` added, Lightning's own refusals turned
    into one `UserError` naming the key.

    Lightning knows its precisions, accelerators, strategies and device counts best: this project does not
    copy those lists, it builds the Trainer before any data is loaded and rewords what Lightning raises.
    """
    settings = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    target = settings.pop("_target_", "pytorch_lightning.Trainer")
    check_devices({**settings, **objects})  # Lightning takes any CPU count: 64 processes on 2 cores
    try:
        trainer = hydra.utils.get_class(target)(**settings, **objects)
        carry_back(trainer)  # ddp_spawn: the callbacks' results come back to this process
        return trainer
    except (MisconfigurationException, ValueError, TypeError) as e:
        message = " ".join(str(e).split())
        if isinstance(e, TypeError) and (unknown := re.search(r"unexpected keyword argument '(\w+)'", message)):
            raise UserError(unknown_option(None, "trainer", target, unknown.group(1), e)) from None
        values = {**settings, **{k: v for k, v in objects.items() if isinstance(v, (str, int, float, list))}}
        key = _named_key(message, values)
        if key is None:
            raise UserError(f"the trainer settings are invalid: {message}") from None
        raise UserError(f"trainer.{key}={values[key]!r} is invalid: {message}") from None


def _named_key(message: str, values: dict[str, Any]) -> str | None:
    """The setting Lightning's message is about: `key=value` written out beats a quoted `key`, which beats the
    bare word (Lightning writes "cpu accelerator" in a message about `devices`)."""

    def score(key: str) -> int:
        if f"{key}={values[key]}" in message or f"{key}={values[key]!r}" in message:
            return 3
        if f"`{key}" in message or f"{key}=" in message:
            return 2
        return 1 if re.search(rf"\b{re.escape(key)}\b", message) else 0

    best = max(values, key=lambda k: (score(k), len(k)), default=None)
    return best if best is not None and score(best) > 0 else None
