"""PreAct ResNet (He et al. 2016, "Identity Mappings in Deep Residual Networks").

CIFAR-style 3x3 stem; an optional max-pool after it for 64x64 inputs (the report's Tiny ImageNet fix).
`final_bn=False` is the network of both original repositories (the report's and LPN's): the last block's
output goes straight into the final ReLU, out = relu(layer4(out)), with no BatchNorm before it. The
default keeps He et al.'s pre-activation design, which normalizes there (the last residual sum is never
normalized otherwise); the difference is 2 * 512 affine parameters at width 64.

`forward(x, return_activations=True)` also returns every ReLU output, which the Laplacian smoothness
defense regularizes. They are returned rather than captured with hooks so the network stays
`torch.compile`-friendly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adv_smooth.utils.errors import is_int, require, require_bool, require_choice, require_int

BlockName = Literal["basic", "bottleneck"]
Residual = Literal["sum", "convex"]


class ScaledConv2d(nn.Conv2d):
    """Conv whose weight is divided by sqrt(2*kh*kw + 1) in the forward pass (Parseval networks).

    With `scale=False` it is a plain `nn.Conv2d`, so the architecture code does not branch on it.
    """

    def __init__(self, *args, scale: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        kh, kw = self.kernel_size
        self.weight_divisor = math.sqrt(2 * kh * kw + 1) if scale else 1.0

    def forward(self, x: Tensor) -> Tensor:
        if self.weight_divisor == 1.0:
            return super().forward(x)
        return self._conv_forward(x, self.weight / self.weight_divisor, self.bias)


class _Block(nn.Module):
    """Shared residual plumbing: pre-activation shortcut and the residual combination."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, scaled_conv: bool, convex: bool):
        super().__init__()
        out = planes * self.expansion
        self.convex = convex
        self.shortcut = None
        if stride != 1 or in_planes != out:
            self.shortcut = ScaledConv2d(in_planes, out, 1, stride=stride, bias=False, scale=scaled_conv)

    def combine(self, branch: Tensor, shortcut: Tensor) -> Tensor:
        return torch.add(branch, shortcut).mul_(0.5) if self.convex else branch + shortcut


class BasicBlock(_Block):
    """Two 3x3 convs, each preceded by BN + ReLU; taps 2 activations."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, scaled_conv: bool, convex: bool):
        super().__init__(in_planes, planes, stride, scaled_conv, convex)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = ScaledConv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False, scale=scaled_conv)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = ScaledConv2d(planes, planes, 3, padding=1, bias=False, scale=scaled_conv)

    def forward(self, x: Tensor, taps: list[Tensor]) -> Tensor:
        a1 = F.relu(self.bn1(x))
        shortcut = self.shortcut(a1) if self.shortcut is not None else x
        a2 = F.relu(self.bn2(self.conv1(a1)))
        taps += [a1, a2]
        return self.combine(self.conv2(a2), shortcut)


class BottleneckBlock(_Block):
    """1x1 -> 3x3 -> 1x1 with 4x expansion; taps 3 activations."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int, scaled_conv: bool, convex: bool):
        super().__init__(in_planes, planes, stride, scaled_conv, convex)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = ScaledConv2d(in_planes, planes, 1, bias=False, scale=scaled_conv)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = ScaledConv2d(planes, planes, 3, stride=stride, padding=1, bias=False, scale=scaled_conv)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = ScaledConv2d(planes, planes * 4, 1, bias=False, scale=scaled_conv)

    def forward(self, x: Tensor, taps: list[Tensor]) -> Tensor:
        a1 = F.relu(self.bn1(x))
        shortcut = self.shortcut(a1) if self.shortcut is not None else x
        a2 = F.relu(self.bn2(self.conv1(a1)))
        a3 = F.relu(self.bn3(self.conv2(a2)))
        taps += [a1, a2, a3]
        return self.combine(self.conv3(a3), shortcut)


BLOCKS: dict[str, type[_Block]] = {"basic": BasicBlock, "bottleneck": BottleneckBlock}
# Sane bounds: the stage widths double from `width` (a ResNet-18 is width 64; 1024 is some 3 billion weights), and
# no residual network uses more stages or blocks per stage (a ResNet-152 has 36 in one stage).
MAX_WIDTH, MAX_STAGES, MAX_BLOCKS = 1024, 8, 100


def check_options(
    width: Any = 64,
    blocks: Any = (2, 2, 2, 2),
    block: Any = "basic",
    residual: Any = "sum",
    stem_pool: Any = False,
    scaled_conv: Any = False,
    final_bn: Any = True,
) -> None:
    """The architecture's options, each against what it allows (an error names the parameter).

    The constructor calls it; so do the start-up checks, before any data is loaded: the network itself is
    built after the data, which supplies its class count and statistics.
    """
    require_int("width", width, 1, high=MAX_WIDTH)
    require(
        isinstance(blocks, Sequence)
        and not isinstance(blocks, str)
        and 0 < len(blocks) <= MAX_STAGES
        and all(is_int(b) and 1 <= b <= MAX_BLOCKS for b in blocks),
        "blocks",
        list(blocks) if isinstance(blocks, Sequence) and not isinstance(blocks, str) else blocks,
        f"a list of 1 to {MAX_STAGES} integers in [1, {MAX_BLOCKS}] (blocks per stage)",
    )
    require_choice("block", block, get_args(BlockName))
    require_choice("residual", residual, get_args(Residual))
    for key, value in (("stem_pool", stem_pool), ("scaled_conv", scaled_conv), ("final_bn", final_bn)):
        require_bool(key, value)


class PreActResNet(nn.Module):
    """PreAct ResNet; `width=64, blocks=(2, 2, 2, 2), block="basic"` is ResNet-18 (`final_bn`: see module doc).

    Args:
        num_classes: the output width (the dataset's class count).
        in_channels: the input's channels (1 grayscale, 3 RGB).
        width: the first stage's channels, doubled at each later stage (64: ResNet-18).
        blocks: residual blocks per stage, e.g. [2, 2, 2, 2] (ResNet-18) or [3, 4, 6, 3] (ResNet-50).
        block: basic (two 3x3 convs) | bottleneck (1x1, 3x3, 1x1 with 4x expansion).
        stem_pool: a max-pool after the stem, halving the resolution (for 64x64 inputs such as Tiny ImageNet).
        mean: per-channel mean the network subtracts from its input (null: the dataset's).
        std: per-channel standard deviation the network divides its input by (null: the dataset's).
        scaled_conv: divide conv weights by sqrt(2 kh kw + 1) in the forward pass (Parseval networks).
        residual: sum (x + f(x)) | convex (0.5 x + 0.5 f(x), Parseval networks).
        final_bn: a BatchNorm before the final ReLU (false: the original repositories' network).
    """

    check_options = staticmethod(check_options)

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 64,
        blocks: Sequence[int] = (2, 2, 2, 2),
        block: BlockName = "basic",
        stem_pool: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        scaled_conv: bool = False,
        residual: Residual = "sum",
        final_bn: bool = True,
    ) -> None:
        super().__init__()
        check_options(width, blocks, block, residual, stem_pool, scaled_conv, final_bn)
        block_cls = BLOCKS[block]
        mean = tuple(mean) if mean is not None else (0.0,) * in_channels
        std = tuple(std) if std is not None else (1.0,) * in_channels
        if len(mean) != in_channels or len(std) != in_channels:
            raise ValueError(f"mean/std need {in_channels} values, got {mean} / {std}")
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

        self.stem = ScaledConv2d(in_channels, width, 3, padding=1, bias=False, scale=scaled_conv)
        self.stem_pool = nn.MaxPool2d(3, stride=2, padding=1) if stem_pool else nn.Identity()
        layers: list[nn.Module] = []
        in_planes = width
        for stage, n_blocks in enumerate(blocks):
            planes = width * 2**stage
            for i in range(n_blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(block_cls(in_planes, planes, stride, scaled_conv, residual == "convex"))
                in_planes = planes * block_cls.expansion
        self.blocks = nn.ModuleList(layers)
        self.bn = nn.BatchNorm2d(in_planes) if final_bn else nn.Identity()
        self.linear = nn.Linear(in_planes, num_classes)
        self.num_classes = num_classes

    def forward(self, x: Tensor, return_activations: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        out = self.stem_pool(self.stem((x - self.mean) / self.std))
        taps: list[Tensor] = []
        for blk in self.blocks:
            out = blk(out, taps)
        out = F.relu(self.bn(out))
        taps.append(out)
        logits = self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))
        return (logits, taps) if return_activations else logits
