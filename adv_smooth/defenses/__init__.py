"""Defenses: objects with optional training hooks (see `base.Defense`)."""

from adv_smooth.defenses.adversarial import AdversarialTraining
from adv_smooth.defenses.base import Compose, Defense, TrainBatch
from adv_smooth.defenses.laplacian import laplacian_smoothness
from adv_smooth.defenses.parseval import Parseval, parseval_retraction_
from adv_smooth.defenses.smoothness import LaplacianSmoothness

__all__ = [
    "AdversarialTraining",
    "Compose",
    "Defense",
    "LaplacianSmoothness",
    "Parseval",
    "TrainBatch",
    "laplacian_smoothness",
    "parseval_retraction_",
]
