"""The runs behind `ckpt=`, read once: the run that wrote each checkpoint (its saved config, vetted, and its
choices), and that config with the command line's overrides laid on it.

Nothing is built here. The order is the order of refusal, after the checkpoint files themselves
(`app/checkpoint_files.py`): each run dir's config, vetted by the allowlist of `app/preflight/targets.py` before
anything is built from it, then the overrides an evaluation may make, then an ensemble's datasets (one test split
judges all its members).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from adv_smooth.app.checkpoint_files import ckpt_label
from adv_smooth.app.choices import saved_choices
from adv_smooth.app.preflight.failures import user_key
from adv_smooth.app.preflight.targets import check_targets, moved_targets
from adv_smooth.data.identity import split_identity
from adv_smooth.utils.conf_dir import default_callbacks
from adv_smooth.utils.errors import UserError

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


@dataclass
class SavedRun:
    """What the run that wrote a checkpoint saved beside it: its config (vetted) and its config-group choices."""

    config: DictConfig
    choices: dict[str, str]


def saved_runs(cfg: DictConfig, overrides: list[str], paths: list[Path]) -> tuple[list[SavedRun], list[DictConfig]]:
    """The runs that wrote the checkpoints at `paths` (read by `app/checkpoint_files.py` already), and each run's
    config with the command line's overrides (`cfg`, `overrides`) laid on it: the configs evaluation runs under."""
    runs = [saved_run(path) for path in paths]
    configs = [apply_overrides(run.config, cfg, overrides) for run in runs]
    check_same_dataset(configs, paths)
    return runs, configs


def saved_run(ckpt_path: Path) -> SavedRun:
    """The run that wrote `ckpt_path` (run/checkpoints/x.ckpt): its `.hydra/config.yaml` and its choices.

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
            moved_targets(loaded)  # an older run's names for renamed modules
            check_targets(loaded, str(saved))
            return SavedRun(loaded, saved_choices(run))
    raise UserError(
        f"ckpt={str(ckpt_path)!r}: no .hydra/config.yaml found in its run dir, so the network it belongs to "
        "is unknown (keep checkpoints inside the run dir that wrote them)"
    )


def apply_overrides(train_cfg: DictConfig, cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Copy the command line's evaluation keys from `cfg` onto the training config."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    asked: list[str] = []  # the eval keys the command line sets
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
            if key == "eval" or key.startswith("eval."):
                asked.append(key)
        reconnect_eval(train_cfg, asked)
        if "eval" not in train_cfg:
            train_cfg.eval = cfg.eval
        train_cfg.trainer.default_root_dir = cfg.trainer.default_root_dir
    return train_cfg


def reconnect_eval(train_cfg: DictConfig, asked: list[str]) -> None:
    """Let the command line's `eval` keys (`asked`: `eval`, `eval.<...>`) reach the callbacks that test the network.

    Their nodes read `eval` (conf/callbacks/default.yaml: `snr_levels: ${eval.snr_levels}`), and the evaluation
    builds them as the run did; a run that set one of those options on the node itself
    (`callbacks.robustness.snr_levels=[40]`) would otherwise silently keep it. The option reads `eval` again.
    """
    if not asked:
        return
    package = default_callbacks()
    callbacks = train_cfg.get("callbacks") or {}
    for name, node in package.items():
        run_node = callbacks.get(name)
        if not isinstance(run_node, DictConfig):
            continue
        for option in node:
            read = user_key(package, f"{name}.{option}")  # the eval key the shipped node reads, e.g. eval.snr_levels
            link = node._get_node(option)._value()  # noqa: SLF001 - the shipped interpolation, unresolved
            pinned = option in run_node and run_node._get_node(option)._value() != link  # noqa: SLF001
            if pinned and any(f"{read}.".startswith(f"{k}.") or f"{k}.".startswith(f"{read}.") for k in asked):
                run_node[option] = link


def _test_split(cfg: DictConfig) -> dict[str, Any]:
    return split_identity(OmegaConf.to_container(cfg.dataset, resolve=True))


def check_same_dataset(configs: list[DictConfig], paths: list[Path]) -> None:
    """Every member must have been trained on the first member's dataset (one test split judges them all)."""
    first = _test_split(configs[0])
    for i, cfg in enumerate(configs[1:], start=1):
        other = _test_split(cfg)
        if other != first:
            key = next(k for k in sorted(set(first) | set(other)) if first.get(k) != other.get(k))
            raise UserError(
                f"{ckpt_label(paths, i)} was trained on another dataset than {ckpt_label(paths, 0)} (dataset.{key}="
                f"{other.get(key)!r} vs {first.get(key)!r}): an ensemble's members must share one dataset"
            )


def chose_eval(overrides: list[str]) -> bool:
    """Whether the command line picks an `eval` preset (the results then name it as the evaluation's choice)."""
    return any(o.lstrip("+~").split("=")[0] == "eval" for o in overrides)
