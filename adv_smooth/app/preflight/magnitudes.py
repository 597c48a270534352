"""The net under every numeric setting: numbers no knob takes are refused at start-up, whatever their key.

Objects check their own options with stated bounds (`utils.errors.require_int`, `require_number`), but a key no
object checks, or checks only from below (`steps >= 1`), would take 10**20 (a crash deep in the data loader or
torch) or `inf` (an attack that runs on silently). This walk over the whole composed config refuses both, naming
the key as the user set it; the command line is vetted with it before Hydra runs, for every entry point.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from adv_smooth.utils.errors import UserError, out_of_range


def check_magnitudes(cfg: DictConfig) -> None:
    """Every number in the config, whether or not something checks its key, within what any knob can take.

    The net under all numeric settings (`utils.errors.out_of_range`): an integer beyond 2**32 - 1 crashes deep in
    the data loader or torch, and an infinite or huge decimal (`eval.attacks.pgd.step_size=inf`) runs on silently.
    Interpolations are skipped: the value is checked where the user set it, under that key. `hydra` is Hydra's.
    """
    plain = OmegaConf.to_container(cfg, resolve=False)
    for key, value, shown in _numbers(plain, "", None):
        if not key.startswith("hydra."):
            wrong = out_of_range(value)
            if wrong is not None:
                raise UserError(f"{key}={shown!r} is invalid: {wrong}")


def _numbers(node: Any, prefix: str, whole: Any) -> list[tuple[str, Any, Any]]:
    """(key, value, what to show) of every int or float below `node`; a list's element is shown as the whole
    list, under the list's key, as the user wrote it (`eval.snr_levels=[40, inf]`)."""
    if isinstance(node, dict):
        return [kv for name, value in node.items() for kv in _numbers(value, f"{prefix}{name}.", None)]
    if isinstance(node, list):
        return [kv for value in node for kv in _numbers(value, prefix, node if whole is None else whole)]
    return [(prefix.rstrip("."), node, node if whole is None else whole)] if isinstance(node, (int, float)) else []
