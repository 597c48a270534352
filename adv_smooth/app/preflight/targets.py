"""Which `_target_`s a config from somewhere else may name: the project's own kinds of objects only.

`python -m adv_smooth.evaluate` rebuilds the network and data from the `.hydra/config.yaml` of the run
that wrote the checkpoint, and that run directory may come from anyone. `hydra.utils.instantiate`
calls whatever a `_target_` names (`torch.load` with `weights_only: false`, `os.system`, a project
function that writes files), so a received run directory could run code. Before anything is built,
`check_targets` walks every `_target_` of the config (nested ones, `_partial_` ones, those inside
`_args_` lists) and accepts only a class under `adv_smooth.`, `torch.optim.` or Lightning, of the kind
its place in the config calls for (a network under `model`, a datamodule under `dataset`, ...).
Functions are never accepted. The dotted name is vetted before it is imported, so no module outside
those packages is even loaded. The first refusal is one `UserError` naming the key and the target.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from omegaconf import DictConfig, ListConfig

from adv_smooth.utils.errors import UserError

PREFIXES = ("adv_smooth.", "torch.optim.", "pytorch_lightning.", "lightning.pytorch.")
# Modules renamed, old dotted name -> new: a run dir written before the rename names its classes at the old place,
# and its config is read as naming the new one (for this release), so its checkpoints still evaluate.
MOVED = {"adv_smooth.lightning.robustness": "adv_smooth.lightning.robustness_callback"}
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")

# (key pattern, name of the kind): `*` is one key component; the first pattern that matches decides, and a
# place no pattern names takes any of the kinds.
PLACES = (
    ("model", "network"),
    ("dataset", "datamodule"),
    ("defense.components.*.attack", "attack"),
    ("defense.components.*", "defense"),
    ("optim.optimizer", "optimizer"),
    ("optim.scheduler", "scheduler"),
    ("trainer", "trainer"),
    ("eval.attacks.*", "attack"),
    ("callbacks.*.attacks.*", "attack"),
    ("callbacks.*", "callback"),
    ("logger.*", "logger"),
)


def _kinds() -> dict[str, type]:
    """The base class of each kind (imported on demand: evaluation imports them all anyway)."""
    import pytorch_lightning as pl
    import torch

    from adv_smooth.attacks.base import Attack
    from adv_smooth.defenses import Defense

    return {
        "network": torch.nn.Module,
        "datamodule": pl.LightningDataModule,
        "defense": Defense,
        "optimizer": torch.optim.Optimizer,
        "scheduler": torch.optim.lr_scheduler.LRScheduler,
        "trainer": pl.Trainer,
        "attack": Attack,
        "callback": pl.Callback,
        "logger": pl.loggers.Logger,
    }


def _matches(key: str, pattern: str) -> bool:
    parts, wanted = key.split("."), pattern.split(".")
    return len(parts) == len(wanted) and all(w in ("*", p) for p, w in zip(parts, wanted))


def _locate(target: str) -> Any:
    """Import the longest module prefix of `target`, then look up the rest as attributes."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        if not module_name.startswith(PREFIXES) and module_name + "." not in PREFIXES:
            break
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(target)


def refusal(target: Any, key: str) -> str | None:
    """Why the config may not build `target` at `key`, or None when it may."""
    if not isinstance(target, str) or not _DOTTED.match(target):
        return "is not a dotted class name"
    if not target.startswith(PREFIXES):
        return f"is outside the packages a config may build from ({', '.join(p.rstrip('.') for p in PREFIXES)})"
    kinds = _kinds()
    kind = next((name for pattern, name in PLACES if _matches(key, pattern)), None)
    allowed = (kinds[kind],) if kind else tuple(kinds.values())
    try:
        obj = _locate(target)
    except (ImportError, AttributeError):
        return "cannot be imported"
    if not isinstance(obj, type):
        return "is not a class (functions are never built from a config)"
    if not issubclass(obj, allowed):
        return f"is not a {kind or 'project object'} class" + (f" ({allowed[0].__name__})" if kind else "")
    return None


def _walk(node: Any, key: str, found: list[tuple[str, Any]]) -> None:
    if isinstance(node, (DictConfig, dict)):
        items = node.items_ex(resolve=False) if isinstance(node, DictConfig) else node.items()
        for name, value in items:
            child = f"{key}.{name}" if key else str(name)
            if name == "_target_":
                found.append((key, value))
            else:
                _walk(value, child, found)
    elif isinstance(node, (ListConfig, list, tuple)):
        for index, value in enumerate(node):
            _walk(value, f"{key}[{index}]", found)


def moved_targets(node: Any) -> None:
    """Rewrite, in place, each `_target_` below `node` that names a class of a renamed module (`MOVED`)."""
    if isinstance(node, DictConfig):
        for name, value in node.items_ex(resolve=False):
            module, _, cls = str(value).rpartition(".") if name == "_target_" else ("", "", "")
            if module in MOVED:
                node[name] = f"{MOVED[module]}.{cls}"
            else:
                moved_targets(value)
    elif isinstance(node, ListConfig):
        for value in node:
            moved_targets(value)


def check_targets(cfg: Any, source: str) -> None:
    """Raise a one-line `UserError` for the first `_target_` in `cfg` (read from `source`) not allowed."""
    found: list[tuple[str, Any]] = []
    _walk(cfg, "", found)
    for key, target in found:
        place = re.sub(r"\[\d+\]", "", key)  # `_args_` entries take the kind of the node they sit in
        place = re.sub(r"\._args_$|\._args_(?=\.)", "", place)
        reason = refusal(target, place)
        if reason is not None:
            raise UserError(
                f"{source}: refusing to build {key or '(top level)'}._target_={target!r}: it {reason}; only the "
                "project's own kinds of objects are built from a saved config (it could otherwise run code)"
            )
