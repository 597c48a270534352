"""Defenses: objects with optional training hooks (see `base.Defense`)."""

from adv_smooth.defenses.base import Compose, Defense, TrainBatch

__all__ = ["Compose", "Defense", "TrainBatch"]
