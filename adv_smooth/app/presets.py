"""The `eval` presets (conf/eval/*.yaml) read without Hydra, so a notebook evaluates with the command line's settings.

The shipped YAML files are the one source of truth for what a preset holds: this module loads them with
OmegaConf and follows the part of Hydra's defaults list they use, an option of the same group (`- report`), an
option of another group placed under a key (`- /attack@attacks.pgd_l2: pgd`) and `_self_`, merged in order as
Hydra does. Anything else in a defaults list is refused by name rather than read differently from Hydra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from adv_smooth.utils.conf_dir import config_dir
from adv_smooth.utils.errors import UserError


def preset_names(conf: str | Path | None = None) -> list[str]:
    """The `eval` presets shipped (the stems of conf/eval/*.yaml)."""
    return sorted(p.stem for p in (Path(conf or config_dir()) / "eval").glob("*.yaml"))


def load_preset(name: str, conf: str | Path | None = None) -> dict[str, Any]:
    """The `eval` preset `name` as a plain dict, its attacks as `_target_` configs (for `build.build_attacks`)."""
    root = Path(conf or config_dir())
    if name not in preset_names(root):
        raise UserError(f"preset={name!r} is not an eval preset (one of {preset_names(root)})")
    return OmegaConf.to_container(_compose(root, "eval", name), resolve=True)


def _compose(root: Path, group: str, option: str) -> DictConfig:
    """One option of a group with its defaults list applied, in order, `_self_` where it stands (last if absent)."""
    path = root / group / f"{option}.yaml"
    if not path.is_file():
        raise UserError(f"{path}: no such config (named in a defaults list)")
    own = OmegaConf.load(path)
    defaults = own.pop("defaults", [])
    if "_self_" not in defaults:
        defaults = [*defaults, "_self_"]
    merged = OmegaConf.create({})
    for entry in defaults:
        if entry == "_self_":
            merged = OmegaConf.merge(merged, own)
        elif isinstance(entry, str) and "/" not in entry and "@" not in entry:
            merged = OmegaConf.merge(merged, _compose(root, group, entry))
        elif isinstance(entry, DictConfig) and len(entry) == 1:
            (key, value), *_ = entry.items()
            other, _, package = str(key).partition("@")
            if not other.startswith("/") or not package:
                raise UserError(f"{path}: defaults entry {key}: {value} is not read here (only /group@key: option)")
            placed = OmegaConf.create({})
            OmegaConf.update(placed, package, _compose(root, other.lstrip("/"), str(value)), force_add=True)
            merged = OmegaConf.merge(merged, placed)
        else:
            raise UserError(f"{path}: defaults entry {entry!r} is not read here (option, /group@key: option, _self_)")
    return merged
