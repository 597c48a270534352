"""The checkpoint files `ckpt=` names: the paths, each file read once (weights-only), and how a refusal names one.

Read before anything in a checkpoint's run dir is (`app/evaluation_inputs.py`): a path list that cannot be one is
refused first, then a missing, corrupt or code-carrying file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import ListConfig

from adv_smooth.utils.checkpoints import load_checkpoint
from adv_smooth.utils.errors import UserError


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


def ckpt_label(paths: list[Path], i: int) -> str:
    """How a refusal names checkpoint i: `ckpt=...` alone, `ckpt[i]=...` in a list."""
    return f"ckpt[{i}]={str(paths[i])!r}" if len(paths) > 1 else f"ckpt={str(paths[i])!r}"


def load_checkpoints(paths: list[Path]) -> list[dict[str, Any]]:
    """Each checkpoint read once (weights-only), before anything in its run dir is: a missing, corrupt or
    code-carrying file is refused first."""
    checkpoints = []
    for i, path in enumerate(paths):
        checkpoint = load_checkpoint(path)
        if "state_dict" not in checkpoint:
            raise UserError(f"{ckpt_label(paths, i)} holds no 'state_dict': not a Lightning checkpoint")
        checkpoints.append(checkpoint)
    return checkpoints
