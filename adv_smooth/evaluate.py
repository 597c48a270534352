"""`python -m adv_smooth.evaluate ckpt=PATH [overrides]`: robustness of a saved checkpoint (thin entry point)."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from adv_smooth.app.entry import run_entry, run_task
from adv_smooth.app.evaluation_run import evaluate
from adv_smooth.app.preflight.command_line import config_dir
from adv_smooth.lightning.preemption import stop_on_signals


def _evaluate_until_signalled(cfg: DictConfig) -> dict[str, Any]:
    """SIGTERM / SIGINT stop an evaluation at once (exit 143 / 130): it has no checkpoint to wait for."""
    with stop_on_signals():
        return evaluate(cfg)


@hydra.main(config_path=config_dir(), config_name="evaluate", version_base="1.3")
def _hydra_entry(cfg: DictConfig) -> object:
    return run_task(_evaluate_until_signalled, cfg)


def main() -> None:
    run_entry(_hydra_entry, config_name="evaluate")  # what to evaluate (ckpt= or weights=) is required there


if __name__ == "__main__":
    main()
