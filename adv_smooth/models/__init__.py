"""Networks. They take images in [0, 1] and know nothing of training."""

from adv_smooth.models.preact_resnet import PreActResNet

__all__ = ["PreActResNet"]
