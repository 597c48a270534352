"""A sweep launcher or sweeper whose packages are missing is one line naming the extra to install, before Hydra starts.

Without them Hydra reports a config it cannot find (`Could not load 'hydra/launcher/ray'`) or a plugin it cannot
import, several lines later and with nothing saying what to install. Our own launcher presets
(`conf/hydra/launcher/*.yaml`) name the plugin's config in their defaults, so the check follows them. A preset
may also choose a plugin itself (`hparams_search=optuna` overrides `/hydra/sweeper`), so the composed config's
`hydra.sweeper` and `hydra.launcher` targets are checked too (`check_plugin_targets`): Hydra would otherwise say
"Error locating target 'optuna.samplers.TPESampler'" and nothing about installing optuna.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adv_smooth.utils.errors import UserError

# plugin config name -> (what it is, the modules it imports, the extra that installs them)
PLUGINS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "ray": ("Ray", ("ray", "hydra_plugins.hydra_ray_launcher"), "ray"),
    "ray_aws": ("Ray", ("ray", "hydra_plugins.hydra_ray_launcher"), "ray"),
    "submitit_local": ("submitit", ("submitit", "hydra_plugins.hydra_submitit_launcher"), "submitit"),
    "submitit_slurm": ("submitit", ("submitit", "hydra_plugins.hydra_submitit_launcher"), "submitit"),
    "joblib": ("joblib", ("joblib", "hydra_plugins.hydra_joblib_launcher"), "sweeps"),
}
# the package a plugin target's module belongs to -> the extra that installs it
TARGET_EXTRAS: dict[str, str] = {
    "optuna": "sweeps",
    "hydra_plugins.hydra_optuna_sweeper": "sweeps",
    "joblib": "sweeps",
    "hydra_plugins.hydra_joblib_launcher": "sweeps",
    "submitit": "submitit",
    "hydra_plugins.hydra_submitit_launcher": "submitit",
    "ray": "ray",
    "hydra_plugins.hydra_ray_launcher": "ray",
}


def _plugin_of(choice: str, conf: Path) -> str:
    """The plugin config a launcher choice stands for: itself, or the first default of our preset of that name."""
    preset = conf / "hydra" / "launcher" / f"{choice}.yaml"
    if choice in PLUGINS or not preset.is_file():
        return choice
    from omegaconf import OmegaConf

    defaults = OmegaConf.load(preset).get("defaults") or []
    first = defaults[0] if defaults else None
    return str(first) if isinstance(first, str) else choice


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing
        return False


def check_launcher(overrides: list[str], conf: str) -> None:
    """Raise a one-line `UserError` when `hydra/launcher=X` needs packages this environment lacks."""
    for override in overrides:
        key, sep, choice = override.partition("=")
        if not sep or key.lstrip("+~") != "hydra/launcher":
            continue
        plugin = _plugin_of(choice.strip(), Path(conf))
        if plugin not in PLUGINS:
            continue
        what, modules, extra = PLUGINS[plugin]
        missing = [m for m in modules if not _installed(m)]
        if missing:
            raise UserError(
                f"hydra/launcher={choice.strip()} needs {what} and its Hydra launcher ({', '.join(missing)} not "
                f'installed): pip install "adv-smooth[{extra}]" (or pip install -e ".[{extra}]" in a checkout)'
            )


def _install_hint(extra: str) -> str:
    return f'pip install "adv-smooth[{extra}]" (or pip install -e ".[{extra}]" in a checkout)'


def _targets(node: object, path: str) -> list[tuple[str, str]]:
    """(key, `_target_`) of every mapping below `node` (plain, unresolved) that names one."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            found.append((f"{path}._target_", node["_target_"]))
        for name, value in node.items():
            found += _targets(value, f"{path}.{name}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _targets(item, f"{path}[{i}]")
    return found


def _package(module: str) -> str:
    """The installable unit of `module`: `optuna` for `optuna.samplers`, the plugin for `hydra_plugins.x.y`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "hydra_plugins" else parts[0]


def check_plugin_targets(cfg: DictConfig) -> None:
    """Raise a one-line `UserError` when a `_target_` under `hydra.sweeper` / `hydra.launcher` cannot be imported."""
    hydra_node = cfg.get("hydra") if "hydra" in cfg else None
    if not isinstance(hydra_node, DictConfig):
        return
    plain = OmegaConf.to_container(hydra_node, resolve=False)
    for group in ("sweeper", "launcher"):
        for key, target in _targets(plain.get(group), f"hydra.{group}"):
            module = target.rpartition(".")[0]
            if not module or _installed(module):
                continue
            package = _package(module)
            extra = TARGET_EXTRAS.get(package)
            how = _install_hint(extra) if extra else f"install the package that provides {module}"
            raise UserError(f"the {group} needs {package}, which is not installed here ({key}={target!r}): {how}")


def missing_plugin_config(message: str) -> str | None:
    """Hydra's "Could not load 'hydra/sweeper/optuna'" (the plugin that ships that config is not installed) as
    the one line naming the extra to install; None for any other composition error."""
    import re

    found = re.search(r"Could not load '?hydra/(launcher|sweeper)/(\w+)", message)
    if found is None:
        return None
    group, choice = found.groups()
    extra = {"optuna": "sweeps", **{name: spec[2] for name, spec in PLUGINS.items()}}.get(choice)
    if extra is None:
        return None
    return f"hydra/{group}={choice} needs a Hydra plugin that is not installed here: {_install_hint(extra)}"
