"""Lightning glue: the LightningModule that wraps a network + defense, and the callbacks."""

from adv_smooth.lightning.module import NonFiniteLossError, RobustClassifier

__all__ = ["NonFiniteLossError", "RobustClassifier"]
