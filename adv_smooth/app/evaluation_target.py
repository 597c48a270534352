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

`build_evaluation` builds all of it in one pass, in the order a refusal must come (the attack settings before
any file is read, the checkpoints before their run dirs, the configs before the data, the data before the
Trainers of `app/evaluation_trainers.py`): the hub (`app/evaluation_run.py`) then only runs what it is given and
writes the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict

from adv_smooth.app.build import build_datamodule, build_network
from adv_smooth.app.choices import evaluation_choices
from adv_smooth.app.evaluation_inputs import Checkpoints, chose_eval, ckpt_label, read_checkpoints
from adv_smooth.app.evaluation_trainers import check_eval, evaluation_trainers
from adv_smooth.app.saved_network import load_network
from adv_smooth.data.identity import split_fingerprints
from adv_smooth.lightning import RobustClassifier
from adv_smooth.models.ensemble import Ensemble
from adv_smooth.models.external import Normalized, check_output, load_weights
from adv_smooth.utils.checkpoints import load_checkpoint
from adv_smooth.utils.errors import UserError


@dataclass
class Tester:
    """One network and the Trainer that tests it (its callbacks write into that pass's own dir)."""

    module: RobustClassifier
    trainer: pl.Trainer


@dataclass
class Evaluation:
    """One evaluation job, built: the config it runs under and the choices its results name, the test data, the
    network to test (an ensemble's mean) with the members to test beside it, the facts for results.json."""

    run_cfg: DictConfig
    choices: dict[str, str]
    datamodule: Any
    tester: Tester
    info: dict[str, Any]
    members: list[tuple[str, Tester]] = field(default_factory=list)


@dataclass
class _Networks:
    """What `from_checkpoints` / `from_weights` load: the config to run under, the data, the network to test, the
    members beside it (path, module) and the facts for results.json."""

    run_cfg: DictConfig
    datamodule: Any
    module: RobustClassifier
    info: dict[str, Any]
    members: list[tuple[str, RobustClassifier]] = field(default_factory=list)


def build_evaluation(cfg: DictConfig, overrides: list[str], out: Path) -> Evaluation:
    """The job `cfg` (this command's config, `overrides` its command line) asks for, its results to go to `out`
    (an ensemble's members to `out/members/<i>/`). Each fact is found once and passed down: the checkpoint paths,
    each checkpoint's weights and run (its saved config, vetted, and its choices)."""
    check_eval(cfg.eval)  # the attacks and the subset, before any file is read
    if cfg.get("weights") is not None:  # any network (models/external.py): the command line's own config
        networks, runs = from_weights(cfg), []
    else:  # our checkpoint(s): each run dir's saved config, vetted once, this command's overrides on top
        checkpoints = read_checkpoints(cfg, overrides)
        networks, runs = from_checkpoints(checkpoints), checkpoints.runs
    outs = [out, *(out / "members" / str(i) for i in range(len(networks.members)))]
    trainer, *member_trainers = evaluation_trainers(networks.run_cfg, networks.datamodule, outs)
    return Evaluation(
        run_cfg=networks.run_cfg,
        choices=evaluation_choices([run.choices for run in runs], chose_eval(overrides)),  # the trained run's
        datamodule=networks.datamodule,
        tester=Tester(networks.module, trainer),
        info=networks.info,
        members=[(p, Tester(m, t)) for (p, m), t in zip(networks.members, member_trainers)],
    )


def from_checkpoints(checkpoints: Checkpoints) -> _Networks:
    """Our checkpoints as `read_checkpoints` read them, each network under its run's config with this command's
    overrides; one data module (the first run's config) tests them all."""
    paths, configs = checkpoints.paths, checkpoints.configs
    pl.seed_everything(configs[0].seed, workers=True, verbose=False)
    datamodule = build_datamodule(configs[0])
    modules = [
        load_network(run_cfg, datamodule, weights["state_dict"], ckpt_label(paths, i))
        for i, (run_cfg, weights) in enumerate(zip(configs, checkpoints.weights))
    ]
    data = {"split_fingerprints": split_fingerprints(datamodule)}  # which images: the report pairs on them
    if len(paths) == 1:
        return _Networks(configs[0], datamodule, modules[0], {"ckpt_path": str(paths[0].resolve()), **data})
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
    return _Networks(configs[0], datamodule, RobustClassifier(ensemble), info, members)


def from_weights(cfg: DictConfig) -> _Networks:
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
    return _Networks(cfg, datamodule, RobustClassifier(net), info)
