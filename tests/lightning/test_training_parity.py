"""Training parity: the project's training step (RobustClassifier + a defense, run by a Lightning Trainer) and a plain
PyTorch loop written here from the study's formulas (`shared/reference/numbers.md`), given the same initial
weights and the same batches, reach the same weights after 20 SGD steps, for vanilla, FGSM adversarial training
(half the batch, weighted cross-entropy, crafting in eval mode), Parseval (the retraction after every step) and
Laplacian power smoothness (cosine graph, L^m, |s_l - s_{l-1}|). The plain loop shares nothing with the project
but the network class: a drift in either (an extra pass, a different weighting, a step in the wrong place, a
missing retraction) shows as different weights."""

from __future__ import annotations

import copy
import functools

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from adv_smooth.defenses.adversarial import AdversarialTraining
from adv_smooth.defenses.base import Defense
from adv_smooth.defenses.parseval import Parseval
from adv_smooth.defenses.smoothness import LaplacianSmoothness
from adv_smooth.lightning.module import RobustClassifier
from adv_smooth.models.preact_resnet import PreActResNet

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS, BATCH, LR, MOMENTUM, DECAY = 20, 16, 0.05, 0.9, 5e-4
SNR, BETA, GAMMA, M = 33.0, 0.01, 0.5, 2


def _batches() -> list[tuple[Tensor, Tensor]]:
    """20 batches of digits training images in [0, 1] (fixed order: both loops see the same ones)."""
    from adv_smooth.data.digits import DigitsDataModule

    data = DigitsDataModule(val_fraction=0.0)
    data.setup()
    x, y = data.splits.train
    x = x[: STEPS * BATCH].double() / 255
    return list(zip(x.split(BATCH), y[: STEPS * BATCH].split(BATCH)))


def _net(**options) -> PreActResNet:
    """In float64: over 20 steps float32's rounding alone (an FGSM sign flipped, BatchNorm on 16 images) grows to
    1e-4; in float64 the two loops agree to 1e-9, so a real difference cannot hide under the tolerance."""
    torch.manual_seed(0)
    return PreActResNet(num_classes=10, in_channels=1, width=8, blocks=(1, 1), **options).double()


def _sgd(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=DECAY)


# -- the plain loop ------------------------------------------------------------------------------------------------
def _fgsm_half(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The first half replaced by FGSM at each image's own 33 dB budget, eps = ||x|| / (10^(snr/20) sqrt(D)),
    crafted with BatchNorm's running statistics (eval mode), true labels, clamped to [0, 1]."""
    k = round(0.5 * len(x))
    x_k = x[:k].clone().requires_grad_(True)
    net.eval()
    grad = torch.autograd.grad(F.cross_entropy(net(x_k), y[:k]), x_k)[0]
    net.train()
    eps = x[:k].flatten(1).norm(dim=1) / (10 ** (SNR / 20) * x[0].numel() ** 0.5)
    x_adv = (x[:k] + eps.view(-1, 1, 1, 1) * grad.sign()).clamp(0, 1)
    return torch.cat([x_adv, x[k:]]), k


def _smoothness(taps: list[Tensor], y: Tensor) -> Tensor:
    """gamma^m mean_l |s_l - s_{l-1}|, s_l = trace(Y^T L^m Y), L = D - W, W the cosine graph with a zero diagonal."""
    one_hot = F.one_hot(y, 10).to(taps[0].dtype)
    s = []
    for a in taps:
        u = F.normalize(a.flatten(1), dim=1)
        w = u @ u.T
        w = w - torch.diag(torch.diag(w))
        lap = torch.diag(w.sum(dim=1)) - w
        s.append(torch.trace(one_hot.T @ torch.linalg.matrix_power(lap, M) @ one_hot))
    s = torch.stack(s)
    return GAMMA**M * (s[1:] - s[:-1]).abs().mean()


@torch.no_grad()
def _parseval(net: nn.Module) -> None:
    """W <- (1 + beta) W - beta W W^T W for every parameter with >= 2 dims, seen as (out, rest)."""
    for p in net.parameters():
        if p.dim() >= 2:
            w = p.reshape(p.shape[0], -1)
            p.copy_(((1 + BETA) * w - BETA * w @ w.T @ w).view_as(p))


def _plain(kind: str, net: nn.Module, batches: list[tuple[Tensor, Tensor]]) -> nn.Module:
    opt = _sgd(net.parameters())
    net.train()
    for x, y in batches:
        if kind == "adv":
            x, k = _fgsm_half(net, x, y)
            ce = F.cross_entropy(net(x), y, reduction="none")
            weight = torch.where(torch.arange(len(y)) < k, 0.3, 1.0).double()
            loss = (ce * weight).sum() / weight.sum()
        elif kind == "smooth":
            logits, taps = net(x, return_activations=True)
            loss = F.cross_entropy(logits, y) + _smoothness(taps, y)
        else:
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if kind == "parseval":
            _parseval(net)
    return net


# -- the project -----------------------------------------------------------------------------------------------------
def _defense(kind: str) -> Defense:
    return {
        "vanilla": Defense,
        "adv": functools.partial(AdversarialTraining, magnitude="sign", snr=SNR),
        "parseval": functools.partial(Parseval, beta=BETA),
        "smooth": functools.partial(LaplacianSmoothness, gamma=GAMMA, m=M),
    }[kind]()


def _project(defense: Defense, net: nn.Module, batches: list[tuple[Tensor, Tensor]]) -> nn.Module:
    module = RobustClassifier(net, defense, optimizer=_sgd)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    trainer = pl.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=False))
    assert trainer.global_step == STEPS
    return module.net


@pytest.mark.parametrize("kind", ["vanilla", "adv", "parseval", "smooth"])
def test_the_project_and_a_plain_loop_reach_the_same_weights(kind: str) -> None:
    batches = _batches()
    defense = _defense(kind)
    options = {"scaled_conv": True, "residual": "convex"} if kind == "parseval" else {}
    assert options == getattr(defense, "model_options", {}), "the plain loop builds the network the defense asks for"
    start = _net(**options)
    plain = _plain(kind, copy.deepcopy(start), batches)
    project = _project(defense, copy.deepcopy(start), batches)
    moved = 0.0
    for (name, p), q, s in zip(plain.state_dict().items(), project.state_dict().values(), start.state_dict().values()):
        if p.is_floating_point():
            torch.testing.assert_close(q, p, rtol=1e-7, atol=1e-9, msg=lambda m, n=name: f"{kind}: {n}: {m}")
            moved = max(moved, float((p - s).abs().max()))
        else:
            assert torch.equal(p, q), f"{kind}: {name}"
    assert moved > 1e-2, "20 steps moved the weights: the comparison is not of two untrained networks"


def test_the_comparison_tells_defenses_apart() -> None:
    """Not vacuous: the plain loop's adversarial training and its vanilla training end far apart."""
    batches = _batches()
    adv = _plain("adv", _net(), batches)
    vanilla = _plain("vanilla", _net(), batches)
    gap = max(float((a - b).abs().max()) for a, b in zip(adv.parameters(), vanilla.parameters()))
    assert gap > 1e-3
