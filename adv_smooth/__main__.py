"""`python -m adv_smooth [overrides]` / `adv-smooth`: train one run, or a sweep with `-m`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from adv_smooth.app.entry import run_entry, run_task
from adv_smooth.app.preflight.command_line import config_dir
from adv_smooth.app.training_run import train


@hydra.main(config_path=config_dir(), config_name="config", version_base="1.3")
def _hydra_entry(cfg: DictConfig) -> object:
    return run_task(train, cfg)


def main() -> None:
    run_entry(_hydra_entry)


if __name__ == "__main__":
    main()
