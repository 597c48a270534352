"""adv_smooth: train image classifiers that resist adversarial noise, and measure it honestly."""

__version__ = "0.1.0"

from adv_smooth.utils.run_name import register as _register_resolvers

_register_resolvers()  # conf/logger/tensorboard.yaml names runs with ${run_name:...}: resolvable wherever it loads


def _register_help() -> None:
    from adv_smooth.app.config_help import register  # --help's described config (conf/hydra/default.yaml)

    register()


_register_help()


def __getattr__(name: str):
    """`adv_smooth.evaluate_model`, imported on first use: the command line's start-up does not pay for torch."""
    if name == "evaluate_model":
        from adv_smooth.app.model_evaluation import evaluate_model

        return evaluate_model
    raise AttributeError(f"module 'adv_smooth' has no attribute {name!r}")
