"""What `python -m adv_smooth.evaluate` evaluates: one checkpoint, an ensemble of checkpoints, or any network.

* `ckpt=PATH`: one of this project's checkpoints; its run dir's saved config (vetted by the allowlist
  of `app/preflight/targets.py`) rebuilds the network and the test split.
* `ckpt=[A,B,...]`: the checkpoints' networks as one ensemble (`models/ensemble.py`: the log of the
  mean softmax, attacked white-box through every member), evaluated beside each member. The members must
  come from runs on the same dataset, since they are judged on one test split; each attack step then costs
  one forward and backward pass per member, which the results say.
* `weights=FILE model=<config with _target_> dataset=...`: a network that is not one of our checkpoints
  (`models/external.py`: weights-only loading of a state_dict or a Lightning checkpoint, its own
  normalization wrapped so inputs stay in [0, 1]). The model config is the user's own command line, so it
  is built as given; only configs read from run dirs go through the allowlist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from adv_smooth.app.build import build_datamodule, build_defense, build_module, build_network
from adv_smooth.app.choices import saved_choices
from adv_smooth.app.preflight.targets import check_targets
from adv_smooth.data.identity import split_fingerprints, split_identity
from adv_smooth.lightning import RobustClassifier
from adv_smooth.models.ensemble import Ensemble
from adv_smooth.models.external import Normalized, check_output, load_weights
from adv_smooth.utils.checkpoints import load_checkpoint, state_mismatch
from adv_smooth.utils.errors import UserError


@dataclass
class Evaluated:
    """The network to test (`module`), its data and config, the members to test beside it, facts for results.json."""

    run_cfg: DictConfig
    datamodule: Any
    module: RobustClassifier
    info: dict[str, Any]
    members: list[tuple[str, RobustClassifier]] = field(default_factory=list)


@dataclass
class SavedRun:
    """What the run that wrote a checkpoint saved beside it: its config (vetted) and its config-group choices."""

    config: DictConfig
    choices: dict[str, str]


def checkpoint_paths(value: Any) -> list[Path]:
    """`ckpt` as a list of paths: one path, or a list of them (an ensemble)."""
    if isinstance(value, (ListConfig, Sequence)) and not isinstance(value, str):
        paths = [str(v) for v in value]
        if not paths:
            raise UserError("ckpt=[] is an empty list: give one checkpoint, or a list of checkpoints (an ensemble)")
        if len(set(paths)) != len(paths):
            raise UserError(f"ckpt={paths} names a checkpoint twice: an ensemble's members must differ")
        return [Path(p).expanduser() for p in paths]
    return [Path(str(value)).expanduser()]


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
            check_targets(loaded, str(saved))
            return SavedRun(loaded, saved_choices(run))
    raise UserError(
        f"ckpt={str(ckpt_path)!r}: no .hydra/config.yaml found in its run dir, so the network it belongs to "
        "is unknown (keep checkpoints inside the run dir that wrote them)"
    )


def _label(paths: list[Path], i: int) -> str:
    return f"ckpt[{i}]={str(paths[i])!r}" if len(paths) > 1 else f"ckpt={str(paths[i])!r}"


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
                f"{_label(paths, i)} was trained on another dataset than {_label(paths, 0)} (dataset.{key}="
                f"{other.get(key)!r} vs {first.get(key)!r}): an ensemble's members must share one dataset"
            )


def load_checkpoints(paths: list[Path]) -> list[dict[str, Any]]:
    """Each checkpoint read once (weights-only), before anything in its run dir is: a missing, corrupt or
    code-carrying file is refused first."""
    checkpoints = []
    for i, path in enumerate(paths):
        checkpoint = load_checkpoint(path)
        if "state_dict" not in checkpoint:
            raise UserError(f"{_label(paths, i)} holds no 'state_dict': not a Lightning checkpoint")
        checkpoints.append(checkpoint)
    return checkpoints


def from_checkpoints(paths: list[Path], checkpoints: list[dict[str, Any]], configs: list[DictConfig]) -> Evaluated:
    """Our checkpoints at `paths`, as `load_checkpoints` read them; `configs[i]`: the saved config of path i's run
    with this command's overrides."""
    check_same_dataset(configs, paths)
    pl.seed_everything(configs[0].seed, workers=True, verbose=False)
    datamodule = build_datamodule(configs[0])
    modules = []
    for i, (run_cfg, checkpoint) in enumerate(zip(configs, checkpoints)):
        defense = build_defense(run_cfg.defense)  # for the architecture options it implies (e.g. Parseval)
        module = build_module(run_cfg, datamodule, defense)
        mismatch = state_mismatch(checkpoint["state_dict"], module.state_dict(), "the network")
        if mismatch is not None:  # torch's own error would be cut to its header line (utils/checkpoints.py)
            raise UserError(
                f"{_label(paths, i)} does not fit the network its run dir's config builds: {mismatch} (a checkpoint "
                "must stay in the run dir that saved it, with that run's model.* and dataset settings)"
            )
        module.load_state_dict(checkpoint["state_dict"])
        modules.append(module)
    data = {"split_fingerprints": split_fingerprints(datamodule)}  # which images: the report pairs on them
    if len(paths) == 1:
        return Evaluated(configs[0], datamodule, modules[0], {"ckpt_path": str(paths[0].resolve()), **data})
    ensemble = Ensemble(m.net for m in modules)
    info = {
        **data,
        "ckpt_path": [str(p.resolve()) for p in paths],
        "ensemble": {
            "members": len(modules),
            "passes_per_attack_step": ensemble.passes_per_step,
            "note": (
                f"the ensemble averages {len(modules)} members' softmax; every attack step runs a forward and a "
                f"backward pass through each member: {ensemble.passes_per_step}x the cost of attacking one member"
            ),
        },
    }
    members = [(str(p.resolve()), m) for p, m in zip(paths, modules)]
    return Evaluated(configs[0], datamodule, RobustClassifier(ensemble), info, members)


def from_weights(cfg: DictConfig) -> Evaluated:
    """Any network: the command line's `model` config, `weights` loaded into it, the command line's dataset."""
    if cfg.get("ckpt") not in (None, "", "null"):
        raise UserError(
            f"weights={cfg.weights!r} and ckpt={cfg.ckpt!r} both given: ckpt evaluates our "
            "checkpoints (their run dirs say the model), weights= an outside network with model=...; give one"
        )
    path = Path(str(cfg.weights)).expanduser()
    weights = load_checkpoint(path)  # refuses a missing, corrupt or code-carrying file before any data is read
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    net = build_network(cfg.model, datamodule)
    load_weights(net.network if isinstance(net, Normalized) else net, path, weights)
    image = next(iter(datamodule.test_dataloader()))[0]
    check_output(net, tuple(image.shape[1:]), datamodule.num_classes, f"model={cfg.model._target_!r}")
    with open_dict(cfg):
        cfg.defense = {"name": "vanilla", "components": {}}  # nothing of a training recipe applies
    info = {"weights": str(path.resolve()), "model": str(cfg.model._target_)}
    info["split_fingerprints"] = split_fingerprints(datamodule)
    return Evaluated(cfg, datamodule, RobustClassifier(net), info)


def ensemble_summary(results: dict[str, Any]) -> str:
    """Two lines for the terminal: the ensemble's clean accuracy beside its members', and what attacking it cost."""
    members = [m["metrics"].get("test/acc", float("nan")) for m in results["members"]]
    shown = " / ".join(f"{100 * a:.2f}" for a in members)
    mean = 100 * sum(members) / len(members)
    return (
        f"ensemble of {len(members)}: clean accuracy {100 * results['metrics'].get('test/acc', float('nan')):.2f} % "
        f"(members {shown} %, mean {mean:.2f} %; each member's numbers under members/<i>/ and in results.json)\n"
        f"cost: {results['ensemble']['note']}"
    )
