"""adv_smooth: train image classifiers that resist adversarial noise, and measure it honestly."""

__version__ = "0.1.0"

from adv_smooth.utils.run_name import register as _register_resolvers

_register_resolvers()  # conf/logger/tensorboard.yaml names runs with ${run_name:...}: resolvable wherever it loads
