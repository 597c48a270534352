"""An independent check of certificates: PGD on the smoothed classifier inside each certified radius.

A certificate says the smoothed classifier g keeps its class c_A everywhere within R of x. This attacks g there,
as Salman et al. (2019) attack a smoothed classifier: L2 PGD on the cross-entropy of the Monte-Carlo soft
classifier, the mean softmax of f over `draws` fresh noisy copies a step (its gradient is an unbiased estimate of
the expectation's), projected onto the ball of radius R (not clamped to [0, 1]: the certificate covers the whole
ball). g is then judged at the attack's point with `n` fresh draws: the image counts as broken only when another
class's probability there is above 1/2 at confidence 1 - alpha (its Clopper-Pearson lower bound), which a
correct certificate allows only with probability alpha. So the count of broken images must be 0 up to the
Monte-Carlo error alpha; more means a wrong certificate (or a wrong implementation).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adv_smooth.robustness.certify import clopper_pearson_lower


def attack_smoothed(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    radius: Tensor,
    sigma: Tensor,
    steps: int,
    draws: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """L2 PGD (from x, step 2.5 R / steps) against the soft smoothed classifier's class `target`, within `radius`."""
    view = (-1,) + (1,) * (x.dim() - 1)
    r, s = radius.to(x.dtype).view(view), sigma.to(x.dtype).view(view)
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        noise = torch.randn((draws, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
        logits = model(((x + delta).unsqueeze(0) + s.unsqueeze(0) * noise).flatten(0, 1))
        soft = F.softmax(logits.float(), dim=1).view(draws, len(x), -1).mean(dim=0)
        loss = F.nll_loss(torch.log(soft.clamp_min(1e-12)), target)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            g = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(view)
            delta = delta + 2.5 * r / steps * g
            norm = delta.flatten(1).norm(dim=1).view(view)
            delta = delta * torch.clamp(r / norm.clamp_min(1e-12), max=1.0)
    return (x + delta).detach()


def broken_inside(certifier, model: nn.Module, x: Tensor, top: Tensor, radius: np.ndarray, sigma: Tensor) -> np.ndarray:
    """int8 (N,): 1 where g confidently answers another class at PGD's point inside the radius, 0 where it held,
    -1 where there was nothing to check (abstained, or radius 0)."""
    out = np.full(len(x), -1, dtype=np.int8)
    rows = np.nonzero(radius > 0)[0]
    if not len(rows):
        return out
    on = torch.as_tensor(rows, device=x.device)
    r = torch.as_tensor(radius[rows], device=x.device)
    with torch.enable_grad():
        x_adv = attack_smoothed(
            model, x[on], top[on], r, sigma[on], certifier.check_steps, certifier.check_draws, certifier.generator
        )
    counts = certifier.counts(model, x_adv, sigma[on], certifier.n)
    counts.scatter_(1, top[on].unsqueeze(1), -1)  # the certified class aside: the best other one
    other = counts.max(dim=1).values.clamp_min(0).cpu().numpy()
    out[rows] = (clopper_pearson_lower(other, certifier.n, certifier.alpha) > 0.5).astype(np.int8)
    return out
