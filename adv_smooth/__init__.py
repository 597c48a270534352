"""adv_smooth: train image classifiers that resist adversarial noise, and measure it honestly."""

__version__ = "0.1.0"
