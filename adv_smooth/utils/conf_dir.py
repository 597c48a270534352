"""Where the shipped YAML configs are: read by the command line (Hydra) and by the library's presets alike."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def config_dir() -> str:
    """`adv_smooth/conf` inside an installed wheel, else the repository's top-level `conf/`."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    if packaged.is_dir():
        return str(packaged)
    return str(package.parent / "conf")


def default_callbacks() -> DictConfig:
    """conf/callbacks/default.yaml as shipped (no composition): the callbacks' nodes, each option reading `eval`."""
    return OmegaConf.load(Path(config_dir()) / "callbacks" / "default.yaml")
