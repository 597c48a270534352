"""Networks that are not this project's checkpoints: a torchvision / timm classifier, a published model.

Every attack and metric here feeds images in [0, 1] and expects the normalization inside the network.
An outside network expects its own normalization (torchvision's ImageNet weights: mean 0.485/0.456/0.406,
std 0.229/0.224/0.225), so `Normalized` wraps it: (x - mean) / std, then the network. The statistics are
buffers named `mean` and `std`, where the normalized-space attacks look for them.

`load_weights` reads a file with the weights-only unpickler (`utils.checkpoints.load_checkpoint`: a file
cannot run code) holding either a plain state_dict or a Lightning checkpoint (its `state_dict`, whose keys
carry the LightningModule's attribute prefix, e.g. `net.` or `model.`, stripped when the bare keys fit).
A state_dict that does not fit the network is one line naming the file and the first mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from adv_smooth.utils.checkpoints import load_checkpoint
from adv_smooth.utils.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalized(nn.Module):
    """`network((x - mean) / std)`: an outside classifier taking images in [0, 1].

    `mean`/`std` are the statistics the network's weights were trained with (None: the dataset's, filled in
    by the evaluation). `num_classes` and `in_channels` are the dataset's, accepted so the evaluation can
    pass the data's facts to any model config; the output width is checked against them when the weights
    are loaded, not here (the network is already built).

    Args:
        network: the wrapped classifier (a config with its own `_target_`).
        mean: per-channel mean the network's weights were trained with (null: the dataset's).
        std: per-channel standard deviation the network's weights were trained with (null: the dataset's).
        num_classes: the dataset's class count, checked against the network's output when weights load.
        in_channels: the dataset's image channels.
    """

    def __init__(
        self,
        network: nn.Module,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        num_classes: int | None = None,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(network, nn.Module):
            raise UserError(f"network={network!r} is invalid: expected a network config with a _target_")
        if mean is None or std is None:
            raise UserError(f"mean={mean!r} / std={std!r}: the normalization the network's weights expect is required")
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise UserError(f"mean={list(mean)} / std={list(std)}: one value per channel, std > 0")
        self.network = network
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([float(s) for s in std]).view(1, -1, 1, 1))
        self.num_classes = num_classes

    def forward(self, x: Tensor) -> Tensor:
        return self.network((x - self.mean) / self.std)


def state_dict_of(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Tensor]:
    """The tensors of a plain state_dict, or of a Lightning checkpoint's `state_dict`."""
    state = checkpoint["state_dict"] if isinstance(checkpoint.get("state_dict"), dict) else checkpoint
    if not state or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise UserError(
            f"weights={str(path)!r} is neither a state_dict (names -> tensors) nor a Lightning checkpoint with one"
        )
    return state


def _fitting_keys(state: dict[str, Tensor], expected: set[str]) -> dict[str, Tensor]:
    """`state` with the leading attribute names (`net.`, `model.`, ...) stripped while that makes it fit better."""
    while not set(state) <= expected:
        heads = {k.split(".", 1)[0] for k in state}
        if len(heads) != 1 or not all("." in k for k in state):
            break
        (head,) = heads
        stripped = {k[len(head) + 1 :]: v for k, v in state.items()}
        if len(set(stripped) & expected) <= len(set(state) & expected):
            break
        state = stripped
    return state


def load_weights(network: nn.Module, path: str | Path, loaded: dict[str, Any] | None = None) -> None:
    """Load `path` (state_dict or Lightning checkpoint, weights-only) into `network`, or one-line `UserError`;
    `loaded`: the file as `load_checkpoint(path)` already read it (it is not read twice)."""
    checkpoint = load_checkpoint(path) if loaded is None else loaded
    state = _fitting_keys(state_dict_of(checkpoint, path), set(network.state_dict()))
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        detail = lines[0] if lines else str(e).splitlines()[0]
        raise UserError(f"weights={str(path)!r} does not fit the model: {detail[:300]}") from None


def check_output(model: nn.Module, image_shape: Sequence[int], num_classes: int, what: str) -> None:
    """One forward pass on a blank image: refuse a model that cannot take the data or scores another class count."""
    try:
        with torch.no_grad():
            scores = model.eval()(torch.zeros(1, *image_shape))
    except RuntimeError as e:
        raise UserError(
            f"{what} cannot take the dataset's {'x'.join(map(str, image_shape))} images: {str(e).splitlines()[0]}"
        ) from None
    if scores.dim() != 2 or scores.shape[1] != num_classes:
        raise UserError(
            f"{what} outputs scores of shape {tuple(scores.shape[1:])} per image, the dataset has {num_classes} "
            "classes (set the network's num_classes)"
        )
