"""Fixtures for the attack tests: tiny models and images, all on CPU, all fast."""

from __future__ import annotations

import pytest
import torch
from attack_helpers import interior_images, tiny_resnet, train_digits_cnn
from torch import Tensor, nn

from adv_smooth.models import PreActResNet


@pytest.fixture(autouse=True)
def _single_thread(one_thread) -> None:
    """Every attack test runs with `one_thread` (tests/conftest.py): the models here are tiny."""


@pytest.fixture
def resnet() -> PreActResNet:
    return tiny_resnet()


@pytest.fixture
def images() -> Tensor:
    return interior_images()


@pytest.fixture
def labels() -> Tensor:
    return torch.arange(8) % 10


@pytest.fixture(scope="session")
def digits() -> tuple[nn.Module, Tensor, Tensor]:
    """A CNN trained on sklearn digits (about a second), shared by the PGD-vs-FGSM tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_digits_cnn()
    finally:
        torch.set_num_threads(before)
