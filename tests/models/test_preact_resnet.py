"""PreAct ResNet shapes, activation taps and in-model normalization."""

from __future__ import annotations

import pytest
import torch

from adv_smooth.models import PreActResNet
from adv_smooth.utils.errors import UserError


@pytest.mark.parametrize(("size", "stem_pool"), [(32, False), (64, True), (64, False)])
def test_output_shape_and_activation_count(size: int, stem_pool: bool) -> None:
    net = PreActResNet(num_classes=7, in_channels=3, width=8, stem_pool=stem_pool)
    logits, acts = net(torch.rand(3, 3, size, size), return_activations=True)
    assert logits.shape == (3, 7)
    assert len(acts) == 2 * 8 + 1  # the seed's `relus`: 2 per block + the final one
    assert all(a.shape[0] == 3 and (a >= 0).all() for a in acts)
    final_hw = size // 8 // (2 if stem_pool else 1)
    assert acts[-1].shape == (3, 64, final_hw, final_hw)


def test_resnet18_parameter_count() -> None:
    # PreAct ResNet-18 on CIFAR-10 has 11.17 M parameters.
    n = sum(p.numel() for p in PreActResNet(10, 3, 64).parameters())
    assert 11.1e6 < n < 11.3e6


def test_bottleneck_taps_three_per_block() -> None:
    net = PreActResNet(10, 3, width=8, blocks=(1, 1), block="bottleneck")
    logits, acts = net(torch.rand(2, 3, 32, 32), return_activations=True)
    assert logits.shape == (2, 10) and len(acts) == 3 * 2 + 1
    assert acts[-1].shape[1] == 16 * 4


def test_normalization_happens_inside() -> None:
    torch.manual_seed(0)
    plain = PreActResNet(10, 1, width=8, blocks=(1,)).eval()
    shifted = PreActResNet(10, 1, width=8, blocks=(1,), mean=[0.5], std=[0.25]).eval()
    weights = {k: v for k, v in plain.state_dict().items() if k not in ("mean", "std")}
    shifted.load_state_dict(weights, strict=False)
    x = torch.rand(4, 1, 16, 16)
    assert torch.allclose(shifted(x), plain((x - 0.5) / 0.25), atol=1e-6)


def test_parseval_options_change_the_forward() -> None:
    torch.manual_seed(0)
    base = PreActResNet(10, 3, width=8, blocks=(1,)).eval()
    scaled = PreActResNet(10, 3, width=8, blocks=(1,), scaled_conv=True, residual="convex").eval()
    scaled.load_state_dict(base.state_dict())
    assert scaled.stem.weight_divisor == pytest.approx((2 * 9 + 1) ** 0.5)
    x = torch.rand(2, 3, 16, 16)
    assert not torch.allclose(base(x), scaled(x), atol=1e-3)


def test_unknown_block_is_refused() -> None:
    with pytest.raises(UserError, match="^block='wide' is invalid: one of basic, bottleneck"):
        PreActResNet(block="wide")


@pytest.mark.parametrize(
    ("final_bn", "classes", "stem_pool", "count"),
    [
        (True, 10, False, 11_172_170),  # the project's default: BatchNorm before the final ReLU
        (False, 10, False, 11_171_146),  # both original repositories (LPN's and the report's PreActResNet18)
        (True, 200, True, 11_269_640),
        (False, 200, True, 11_268_616),  # the report's Tiny ImageNet network (max-pool has no parameters)
    ],
)
def test_final_bn_parameter_counts(final_bn: bool, classes: int, stem_pool: bool, count: int) -> None:
    net = PreActResNet(num_classes=classes, in_channels=3, final_bn=final_bn, stem_pool=stem_pool)
    assert sum(p.numel() for p in net.parameters()) == count


def test_without_final_bn_the_last_tap_is_relu_of_the_last_block() -> None:
    torch.manual_seed(0)
    net = PreActResNet(num_classes=10, in_channels=1, width=4, blocks=(1, 1), final_bn=False).train()
    x = torch.rand(6, 1, 16, 16)
    _, taps = net(x, return_activations=True)
    out = net.stem((x - net.mean) / net.std)
    for block in net.blocks:
        out = block(out, [])
    torch.testing.assert_close(taps[-1], torch.relu(out))  # out = relu(layer4(out)), no normalization
    assert not any(name.startswith("bn.") for name in net.state_dict())
