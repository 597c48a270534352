"""Start-up validation: every user-facing number and name is checked before any data is loaded.

Each failure is a `UserError` naming the key, the value and what is allowed. Defense-specific
settings are validated by the defense constructors, which the entry point also runs before data.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from adv_smooth.errors import UserError, require


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(cfg: DictConfig) -> None:
    require(_is_int(cfg.get("seed")), "seed", cfg.get("seed"), "an integer")
    data = cfg.dataset
    require(_is_int(data.batch_size) and data.batch_size >= 1, "dataset.batch_size", data.batch_size, "an integer >= 1")
    vf = data.get("val_fraction", 0.1)
    require(isinstance(vf, (int, float)) and 0 <= vf < 1, "dataset.val_fraction", vf, "a fraction in [0, 1)")
    optim = cfg.optim
    require(isinstance(optim.lr, (int, float)) and optim.lr > 0, "optim.lr", optim.lr, "a number > 0")
    wd = optim.get("weight_decay", 0.0)
    require(isinstance(wd, (int, float)) and wd >= 0, "optim.weight_decay", wd, "a number >= 0")
    trainer = cfg.trainer
    epochs = trainer.get("max_epochs")
    require(_is_int(epochs) and (epochs >= 1 or epochs == -1), "trainer.max_epochs", epochs, "an integer >= 1")
    width = cfg.model.get("width", 1)
    require(_is_int(width) and width >= 1, "model.width", width, "an integer >= 1")
    ckpt = cfg.get("ckpt_path")
    if ckpt not in (None, "last"):
        if not Path(str(ckpt)).is_file():
            raise UserError(f"ckpt_path={ckpt!r} is invalid: no such checkpoint file (or use ckpt_path=last)")
