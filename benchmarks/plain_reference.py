"""The plain PyTorch reference the GPU check compares the project with: no Lightning, no Hydra, written for speed.

What an expert would write for the same job: the uint8 data resident on the GPU, a device `randperm` per epoch, the
crop + flip done on the GPU for the whole batch, bf16 autocast, channels_last, the same PreAct ResNet-18 and SGD, an
optional `torch.compile`, and no host sync inside the loop (losses and counts stay on the device, read once). The
attack loop does the passes `eval=report` does: the clean forward, one input gradient (FGSM's, shared by the levels),
per level the FGSM point's forward and PGD-10 from a random start (10 gradients, the last iterate's forward).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adv_smooth.attacks.budget import snr_eps  # the per-image L-inf budget ||x|| / (10^(snr/20) sqrt(D))
from adv_smooth.models import PreActResNet


def make_net(width: int, classes: int, device: str, channels_last: bool, compile: bool, blocks=(2, 2, 2, 2)):
    net = PreActResNet(num_classes=classes, width=width, blocks=blocks, mean=(0.5,) * 3, std=(0.25,) * 3).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return torch.compile(net) if compile else net


def sgd(net: nn.Module) -> torch.optim.Optimizer:
    """`optim=sgd`'s settings."""
    return torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)


def crop_flip(images: Tensor, padding: int = 4) -> Tensor:
    """uint8 (N, C, H, W) -> float in [0, 1], each image shifted at random (zero padding) and flipped half the time:
    one flat index per image and one gather for the batch."""
    n, c, h, w = images.shape
    dev = images.device
    x = F.pad(images.float().div_(255), (padding,) * 4)
    dy, dx = torch.randint(0, 2 * padding + 1, (2, n, 1), device=dev)
    cols = dx + torch.arange(w, device=dev)
    cols = torch.where(torch.rand(n, 1, device=dev) < 0.5, cols.flip(1), cols)
    index = ((dy + torch.arange(h, device=dev))[:, :, None] * x.shape[3] + cols[:, None, :]).view(n, 1, h * w)
    return x.flatten(2).gather(2, index.expand(n, c, h * w)).view(n, c, h, w)


def input_grad(net: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    x = x.detach().requires_grad_(True)
    logits = net(x)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
    return grad, logits.detach()


def train_step(net, opt, images: Tensor, labels: Tensor, adv_fraction: float = 0.0, snr_db: float = 33.0) -> Tensor:
    """One step on a uint8 batch: augmentation, optional FGSM on the first `adv_fraction` (BN in eval while crafting,
    adversarial rows weighted 0.3), forward, backward, SGD. Returns the loss, on the device."""
    x = crop_flip(images)
    weights = torch.ones(len(x), device=x.device)
    k = round(adv_fraction * len(x))
    with torch.autocast("cuda", torch.bfloat16, enabled=x.is_cuda):
        if k:
            net.eval()
            grad, _ = input_grad(net, x[:k], labels[:k])
            net.train()
            x = torch.cat([(x[:k] + snr_eps(x[:k], snr_db) * grad.sign()).clamp_(0, 1), x[k:]])
            weights[:k] = 0.3
        loss = (F.cross_entropy(net(x), labels, reduction="none") * weights).sum() / weights.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def train_epoch(net, opt, images: Tensor, labels: Tensor, batch: int, steps: int | None = None, **adv) -> Tensor:
    """`steps` steps (default: one pass) over a fresh device permutation; the last loss, still on the device."""
    net.train()
    order = torch.randperm(len(labels), device=labels.device)
    loss = torch.zeros((), device=labels.device)
    for i in range(steps if steps is not None else math.ceil(len(labels) / batch)):
        idx = order[i * batch : (i + 1) * batch]
        loss = train_step(net, opt, images[idx], labels[idx], **adv)
    return loss


def report_attacks(net, images: Tensor, labels: Tensor, levels, batch: int, steps: int = 10, step_size: float = 2.5):
    """FGSM and PGD-10 (L-inf, random start) at each SNR level on every image; correct counts (2, L) on the device."""
    net.eval()
    correct = torch.zeros(2, len(levels), dtype=torch.long, device=labels.device)
    for start in range(0, len(labels), batch):
        x, y = images[start : start + batch].float().div_(255), labels[start : start + batch]
        with torch.autocast("cuda", torch.bfloat16, enabled=x.is_cuda):
            grad, logits = input_grad(net, x, y)
            for i, level in enumerate(levels):
                eps = snr_eps(x, level)
                with torch.no_grad():
                    correct[0, i] += (net((x + eps * grad.sign()).clamp(0, 1)).argmax(1) == y).sum()
                delta = (torch.rand_like(x) * 2 - 1) * eps
                broken = torch.zeros_like(y, dtype=torch.bool)
                for _ in range(steps):
                    g, logits = input_grad(net, (x + delta).clamp(0, 1), y)
                    broken |= logits.argmax(1) != y
                    delta = ((x + delta).clamp(0, 1) - x + step_size * eps / steps * g.sign()).clamp(-eps, eps)
                with torch.no_grad():
                    broken |= net((x + delta).clamp(0, 1)).argmax(1) != y
                correct[1, i] += (~broken).sum()
    return correct


def validate(net, images: Tensor, labels: Tensor, batch: int, probe_images: int, probe_snr_db: float) -> Tensor:
    """Clean accuracy counts over the split, then FGSM at one level on its first `probe_images` (the project's
    validation probe); (clean correct, probe correct) on the device."""
    net.eval()
    counts = torch.zeros(2, dtype=torch.long, device=labels.device)
    for start in range(0, len(labels), batch):
        x, y = images[start : start + batch].float().div_(255), labels[start : start + batch]
        with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=x.is_cuda):
            counts[0] += (net(x).argmax(1) == y).sum()
        if start < probe_images:
            x, y = x[: probe_images - start], y[: probe_images - start]
            with torch.autocast("cuda", torch.bfloat16, enabled=x.is_cuda):
                grad, _ = input_grad(net, x, y)
                with torch.no_grad():
                    counts[1] += (net((x + snr_eps(x, probe_snr_db) * grad.sign()).clamp(0, 1)).argmax(1) == y).sum()
    return counts
