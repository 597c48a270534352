"""A sweep launcher whose packages are missing is one line naming the extra to install, before Hydra starts.

Without them Hydra reports a config it cannot find (`Could not load 'hydra/launcher/ray'`) or a plugin it cannot
import, several lines later and with nothing saying what to install. Our own launcher presets
(`conf/hydra/launcher/*.yaml`) name the plugin's config in their defaults, so the check follows them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from adv_smooth.utils.errors import UserError

# plugin config name -> (what it is, the modules it imports, the extra that installs them)
PLUGINS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "ray": ("Ray", ("ray", "hydra_plugins.hydra_ray_launcher"), "ray"),
    "ray_aws": ("Ray", ("ray", "hydra_plugins.hydra_ray_launcher"), "ray"),
    "submitit_local": ("submitit", ("submitit", "hydra_plugins.hydra_submitit_launcher"), "submitit"),
    "submitit_slurm": ("submitit", ("submitit", "hydra_plugins.hydra_submitit_launcher"), "submitit"),
    "joblib": ("joblib", ("joblib", "hydra_plugins.hydra_joblib_launcher"), "sweeps"),
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
