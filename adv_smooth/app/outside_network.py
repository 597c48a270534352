"""The network of `weights=FILE model=<config with _target_> dataset=...`: one that is not our checkpoint.

`models/external.py` loads it weights-only (a state_dict or a Lightning checkpoint) and wraps its own
normalization so inputs stay in [0, 1]. The model config is the user's own command line, so it is built as given;
only configs read from run dirs go through the allowlist (`app/checkpoint_networks.py`).
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict

from adv_smooth.app.build import build_datamodule, build_network
from adv_smooth.app.checkpoint_networks import Networks
from adv_smooth.data.identity import split_fingerprints
from adv_smooth.lightning import RobustClassifier
from adv_smooth.models.external import Normalized, check_output, load_weights
from adv_smooth.utils.checkpoints import load_checkpoint
from adv_smooth.utils.errors import UserError


def from_weights(cfg: DictConfig) -> Networks:
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
    return Networks(cfg, datamodule, RobustClassifier(net), info)
