"""A network rebuilt from the config of the run that trained it, with the weights a checkpoint of that run saved.

One loader for every reader of our checkpoints (checkpoint evaluation, `report --transfer`): the network evaluated
and the network attacked in the transfer matrix are built the same way, and a checkpoint that does not fit its
config is refused in one line naming it, not with torch's page-long error.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from adv_smooth.app.build import build_defense, build_module
from adv_smooth.lightning import RobustClassifier
from adv_smooth.utils.checkpoints import state_mismatch
from adv_smooth.utils.errors import UserError


def load_network(cfg: DictConfig, datamodule: Any, state_dict: dict[str, Any], label: str) -> RobustClassifier:
    """The module `cfg` (the training run's config) builds on `datamodule`'s facts, holding `state_dict` (a
    checkpoint's, already read); `label` names the checkpoint in a refusal."""
    defense = build_defense(cfg.defense)  # for the architecture options it implies (e.g. Parseval)
    module = build_module(cfg, datamodule, defense)
    mismatch = state_mismatch(state_dict, module.state_dict(), "the network")
    if mismatch is not None:  # torch's own error would be cut to its header line (utils/checkpoints.py)
        raise UserError(
            f"{label} does not fit the network its run dir's config builds: {mismatch} (a checkpoint "
            "must stay in the run dir that saved it, with that run's model.* and dataset settings)"
        )
    module.load_state_dict(state_dict)
    return module
