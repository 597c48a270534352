"""Turn a composed config into objects. Shared by training, checkpoint evaluation, `evaluate_model` and benchmarks.

The library's objects take built objects (a defense its crafting attack, the robustness callback its attacks) and
know no config: building from `_target_` configs happens here, and only a subclass of `Attack` is ever built from
an attack config.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from adv_smooth.app.preflight.devices import check_devices
from adv_smooth.app.preflight.failures import keyed, unknown_option, user_key
from adv_smooth.attacks.base import Attack
from adv_smooth.data import ImageDataModule
from adv_smooth.defenses import Compose, Defense
from adv_smooth.lightning import RobustClassifier
from adv_smooth.lightning.distributed import carry_back
from adv_smooth.lightning.robustness_callback import RobustnessVsSNR
from adv_smooth.lightning.test_subset import TestSubset
from adv_smooth.models.perf import apply_perf, resolve_perf
from adv_smooth.robustness.attack_configs import default_attacks
from adv_smooth.utils.conf_dir import default_callbacks
from adv_smooth.utils.errors import UserError


def build_defense(cfg: DictConfig) -> Defense:
    """Instantiate every `defense.components.<name>` and chain them (empty = vanilla)."""
    components = cfg.get("components") or {}
    return Compose(_build_component(c) for c in components.values())


def _build_component(node: DictConfig) -> Defense:
    """One defense; a crafting `attack` config (`_recursive_: false` in the YAML) is built here and passed built.

    The defense's own keys are checked first, as a reader of the YAML expects: when the attack cannot be built,
    the defense is built without it, so that its own refusal (naming `defense.<key>`) comes first.
    """
    attack = node.get("attack") if isinstance(node, DictConfig) else None
    if not (isinstance(attack, DictConfig) and "_target_" in attack):
        return instantiate_named(node)
    try:
        built = build_attack(attack)
    except UserError:
        instantiate_named(node, attack=None)  # the defense's own refusal, if any, first
        raise
    return instantiate_named(node, attack=built)


def instantiate_named(node: DictConfig, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate(node, **kwargs)`; an object's refusal naming its own parameter (`gamma=-1 is
    invalid: ...`) comes out as one `UserError` naming the user's key (`defense.gamma=-1 is invalid: ...`)."""
    from hydra.errors import InstantiationException

    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        while isinstance(cause, InstantiationException):
            cause = cause.__cause__
        if not isinstance(cause, UserError):
            raise
        key = node._get_full_key(None) or "the config"  # noqa: SLF001 - the node's place in its config
        raise UserError(_named(node, key, str(cause))) from None


def build_attack(config: Any, key: str | None = None) -> Attack:
    """An attack from its `_target_` config (a `DictConfig` placed in a composed config, or a plain mapping);
    every refusal is one `UserError` naming the user's key (`key`, or the config's own place).

    The target is imported and vetted as a subclass of `Attack` before anything is called: never call what a
    config merely names.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import get_object

    if key is None and isinstance(config, DictConfig):
        root, full = config._get_root(), config._get_full_key(None)  # noqa: SLF001 - the node's place in its config
        key = user_key(root, full) if full else None
    key = key or "attack"
    target = config["_target_"]
    try:
        cls = get_object(str(target))  # imports the module; calls nothing
    except Exception as e:
        raise UserError(f"{key}: cannot build {target}: {str(e).splitlines()[0]}") from None
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        raise UserError(
            f"{key}._target_={target!r} is invalid: expected an attack class (a subclass of "
            "adv_smooth.attacks.base.Attack, e.g. one named in conf/attack/*.yaml)"
        )
    settings = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)
    try:
        return hydra.utils.instantiate(settings, _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__ or e
        while cause.__cause__ is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise UserError(_named(config, key, str(cause))) from None
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            option = str(cause).rsplit("argument", 1)[-1].strip(" '")
            if isinstance(config, DictConfig):
                raise UserError(unknown_option(config._get_root(), key, target, option, cause)) from None  # noqa: SLF001
            raise UserError(f"{key}.{option} is not an option of {target}") from None
        message = str(cause).splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise UserError(f"{key}: cannot build {target}: {message}") from None


def _named(config: Any, key: str, message: str) -> str:
    """An object's refusal naming its own options (`steps=-1 is invalid: ...`) under the user's keys: each option's
    place in the config, followed back through an interpolation (`...trades.attack.steps` -> `defense.steps`); an
    object built from a plain mapping that names none of the mapping's options is read under `key`."""
    if isinstance(config, DictConfig):
        return keyed(message, config, config._get_full_key(None) or "")  # noqa: SLF001 - the node's place
    placed = keyed(message, config, key)
    return f"{key}.{message}" if placed == message else placed


def build_attacks(attacks: Mapping[str, Any] | None, key: str = "eval.attacks") -> dict[str, Attack]:
    """`{label: Attack}` from built attacks or `_target_` configs (None: the default attacks); a `UserError` names a
    bad entry under `key` (`eval.attacks.<label>...`)."""
    if attacks is None:
        return default_attacks()
    if not isinstance(attacks, Mapping):
        raise UserError(f"{key}={attacks!r} is invalid: a mapping from a label to an attack config")
    built: dict[str, Attack] = {}
    for label, attack in attacks.items():
        if isinstance(attack, Mapping) and "_target_" in attack:
            attack = build_attack(attack, f"{key}.{label}")
        if not isinstance(attack, Attack):
            raise UserError(
                f"{key}.{label}={attack!r} is invalid: expected an attack config with a _target_ "
                f"(one of conf/attack/*.yaml, e.g. +attack@{key}.{label}=apgd)"
            )
        built[str(label)] = attack
    return built


class EvaluationCallbacks(NamedTuple):
    """The callbacks that test a network: how robust it is, and on which images (`eval.test_subset*`). Built in this
    order: a bad attack setting is refused first, as it is when they are built from `eval` alone."""

    robustness: RobustnessVsSNR
    test_subset: TestSubset


def build_evaluation_callbacks(cfg: DictConfig, **overrides: Any) -> EvaluationCallbacks:
    """`callbacks.robustness` (`overrides`: its own) and `callbacks.test_subset` of `cfg`, built as training builds
    them (`build_callback`), so a refusal names the `eval` key their interpolations read. A run that removed one
    (`~callbacks.robustness`) is still tested, by the package's own node reading the same `eval` keys."""
    # built from a copy: Hydra resolves a node that `${oc.select:eval.certify,null}` hands it in place, which would
    # fix `eval.certify.sigma`'s `${oc.select:defense.noise_sigma,...}` to this config's value in `cfg` itself
    cfg = copy.deepcopy(cfg)
    removed = [name for name in EvaluationCallbacks._fields if (cfg.get("callbacks") or {}).get(name) is None]
    if removed:  # placed in the copy, whose `eval` their interpolations read; the run's config stays as saved
        default = default_callbacks()
        with open_dict(cfg):
            cfg.callbacks = cfg.get("callbacks") or {}
            for name in removed:
                cfg.callbacks[name] = default[name]
    own = {"robustness": overrides}
    return EvaluationCallbacks(
        *(build_callback(cfg.callbacks[n], **own.get(n, {})) for n in EvaluationCallbacks._fields)
    )


def build_callback(node: DictConfig, **overrides: Any) -> Any:
    """One callback; the `attacks` it evaluates (`_recursive_: false` in the YAML) built here, named `eval.attacks`."""
    attacks = node.get("attacks", None) if isinstance(node, DictConfig) and "attacks" in node else None
    if isinstance(attacks, (DictConfig, Mapping)) and "attacks" not in overrides:
        root, full = node._get_root(), node._get_full_key("attacks")  # noqa: SLF001 - where the user sets them
        key = user_key(root, full) if full else "eval.attacks"
        plain = OmegaConf.to_container(attacks, resolve=True) if isinstance(attacks, DictConfig) else attacks
        overrides["attacks"] = build_attacks(plain, key)
    return instantiate_named(node, **overrides)


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
        return instantiate_named(node)
    rest = OmegaConf.create({k: v for k, v in resolved.items() if k not in literal})
    try:
        return hydra.utils.instantiate(rest, _partial_=True)(**literal)
    except UserError as e:  # the object's own refusal, naming its parameter: under the node's key
        raise UserError(_named(node, node._get_full_key(None) or "the config", str(e))) from None  # noqa: SLF001


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
    net = instantiate_named(
        cfg.model,
        num_classes=datamodule.num_classes,
        in_channels=datamodule.channels,
        mean=list(datamodule.mean),
        std=list(datamodule.std),
        **defense.model_options,
    )
    try:
        perf = resolve_perf(**(cfg.get("perf") or {}), **_run_facts(trainer, datamodule))
    except UserError as e:  # it names its parameter (`compile=1 is invalid`); the user set `perf.compile`
        raise UserError(f"perf.{e}") from None
    net = apply_perf(net, **perf)  # channels_last / compile (models/perf.py); absent = off
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


def build_network(model_cfg: DictConfig, datamodule: Any) -> Any:
    """The `model` config's network, given the data's facts (classes, channels, statistics) that its class takes
    and the config leaves unset (so a torchvision config's own ImageNet statistics win over the dataset's)."""
    try:
        cls = hydra.utils.get_object(str(model_cfg._target_))
    except Exception as e:
        raise UserError(f"model._target_={model_cfg._target_!r} cannot be imported: {str(e).splitlines()[0]}") from None
    facts = {
        "num_classes": datamodule.num_classes,
        "in_channels": datamodule.channels,
        "mean": list(datamodule.mean),
        "std": list(datamodule.std),
    }
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepted = {}
    given = {k: v for k, v in facts.items() if k in accepted and model_cfg.get(k) is None}
    try:
        return hydra.utils.instantiate(model_cfg, **given)
    except Exception as e:
        cause = e.__cause__ or e
        if isinstance(cause, UserError):  # it names its own options (`mean=`): the user set them under `model`
            raise UserError(_named(model_cfg, "model", str(cause))) from None
        raise UserError(f"model={model_cfg._target_!r} cannot be built: {str(cause).splitlines()[0]}") from None


def build_list(cfg: DictConfig | None) -> list[Any]:
    """Callbacks / loggers: every entry with a `_target_` (null entries disable a default)."""
    if not cfg:
        return []
    return [build_callback(c) for c in cfg.values() if c is not None and "_target_" in c]


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
