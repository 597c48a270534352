"""Datasets as in-memory LightningDataModules (see `base.ImageDataModule`)."""

from adv_smooth.data.base import ImageDataModule, Splits, TensorImages

__all__ = ["ImageDataModule", "Splits", "TensorImages"]
