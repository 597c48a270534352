"""The networks of `ckpt=PATH` or `ckpt=[A,B,...]`: our checkpoints, each under its run's saved config.

One checkpoint is tested as it is; several are one ensemble (`models/ensemble.py`: the log of the mean softmax,
attacked white-box through every member), tested beside each member. The checkpoints are read whole first, in the
order of refusal (the files by `app/checkpoint_files.py`, then their runs by `app/evaluation_inputs.py`), then one
data module (the first run's config) is built and each network loaded into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig

from adv_smooth.app.build import build_datamodule
from adv_smooth.app.checkpoint_files import checkpoint_paths, ckpt_label, load_checkpoints
from adv_smooth.app.evaluation_inputs import SavedRun, saved_runs
from adv_smooth.app.saved_network import load_network
from adv_smooth.data.identity import split_fingerprints
from adv_smooth.lightning import RobustClassifier
from adv_smooth.models.ensemble import Ensemble


@dataclass
class Networks:
    """What an evaluation tests: the config to run under, the data, the network to test, the members beside it
    (path, module), the facts for results.json and the runs that trained them (none for an outside network)."""

    run_cfg: DictConfig
    datamodule: Any
    module: RobustClassifier
    info: dict[str, Any]
    members: list[tuple[str, RobustClassifier]] = field(default_factory=list)
    runs: list[SavedRun] = field(default_factory=list)


def from_checkpoints(cfg: DictConfig, overrides: list[str]) -> Networks:
    """The checkpoints `cfg.ckpt` names (`overrides`: the command line), each network under its run's config with
    this command's overrides; one data module (the first run's config) tests them all."""
    paths = checkpoint_paths(cfg.ckpt)
    checkpoints = load_checkpoints(paths)  # each file before anything in its run dir is read
    runs, configs = saved_runs(cfg, overrides, paths)
    pl.seed_everything(configs[0].seed, workers=True, verbose=False)
    datamodule = build_datamodule(configs[0])
    modules = [
        load_network(run_cfg, datamodule, weights["state_dict"], ckpt_label(paths, i))
        for i, (run_cfg, weights) in enumerate(zip(configs, checkpoints))
    ]
    data = {"split_fingerprints": split_fingerprints(datamodule)}  # which images: the report pairs on them
    if len(paths) == 1:
        info = {"ckpt_path": str(paths[0].resolve()), **data}
        return Networks(configs[0], datamodule, modules[0], info, runs=runs)
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
    return Networks(configs[0], datamodule, RobustClassifier(ensemble), info, members, runs)
