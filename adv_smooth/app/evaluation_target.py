"""What `python -m adv_smooth.evaluate` evaluates: one checkpoint, an ensemble of checkpoints, or any network.

* `ckpt=PATH`: one of this project's checkpoints; its run dir's saved config (vetted by the allowlist
  of `app/preflight/targets.py`) rebuilds the network and the test split.
* `ckpt=[A,B,...]`: the checkpoints' networks as one ensemble, evaluated beside each member. The members must
  come from runs on the same dataset, since they are judged on one test split; each attack step then costs
  one forward and backward pass per member, which the results say (both: `app/checkpoint_networks.py`).
* `weights=FILE model=<config with _target_> dataset=...`: a network that is not one of our checkpoints
  (`app/outside_network.py`); its model config is the user's own command line, so it is built as given.

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
from omegaconf import DictConfig

from adv_smooth.app.build import build_evaluation_callbacks
from adv_smooth.app.checkpoint_networks import from_checkpoints
from adv_smooth.app.choices import evaluation_choices
from adv_smooth.app.evaluation_inputs import chose_eval
from adv_smooth.app.evaluation_trainers import evaluation_trainers
from adv_smooth.app.outside_network import from_weights
from adv_smooth.lightning import RobustClassifier


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


def build_evaluation(cfg: DictConfig, overrides: list[str], out: Path) -> Evaluation:
    """The job `cfg` (this command's config, `overrides` its command line) asks for, its results to go to `out`
    (an ensemble's members to `out/members/<i>/`). Each fact is found once and passed down: the checkpoint paths,
    each checkpoint's weights and run (its saved config, vetted, and its choices)."""
    # this command's attack settings (names, SNR levels) and test subset, vetted by building them before any file
    # is read; the Trainers' own are built at the end, from the config the evaluation runs under
    build_evaluation_callbacks(cfg)
    # any network (models/external.py) under the command line's own config, else our checkpoint(s): each run dir's
    # saved config, vetted once, this command's overrides on top
    networks = from_weights(cfg) if cfg.get("weights") is not None else from_checkpoints(cfg, overrides)
    outs = [out, *(out / "members" / str(i) for i in range(len(networks.members)))]
    trainer, *member_trainers = evaluation_trainers(networks.run_cfg, networks.datamodule, outs)
    return Evaluation(
        run_cfg=networks.run_cfg,
        choices=evaluation_choices([run.choices for run in networks.runs], chose_eval(overrides)),  # the trained run's
        datamodule=networks.datamodule,
        tester=Tester(networks.module, trainer),
        info=networks.info,
        members=[(p, Tester(m, t)) for (p, m), t in zip(networks.members, member_trainers)],
    )
