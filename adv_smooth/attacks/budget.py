"""Per-image perturbation budgets, and the SNR a perturbation actually produces.

The report measures attacks by their signal-to-noise ratio, per image:

    SNR = 20 log10(||x||_2 / ||delta||_2)

An L-infinity step `delta = eps * sign(g)` with no zero in `g` has `||delta||_2 = eps * sqrt(D)` (D values
per image), so the step that reaches a given SNR is

    eps = ||x||_2 / (10^(SNR/20) * sqrt(D)).

A bright image therefore gets a larger budget than a dark one. All functions keep a leading batch
dimension; budgets are returned shaped (N, 1, ..., 1) so they broadcast against the images.

All-zero images: their budget is 0 (no perturbation is possible at a finite SNR), and an unchanged image
measures +inf dB, so neither produces NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def per_image_norm(x: Tensor) -> Tensor:
    """L2 norm of each image, shape (N,)."""
    return x.flatten(1).norm(dim=1)


def _per_image_shape(values: Tensor, like: Tensor) -> Tensor:
    """Reshape (N,) values to (N, 1, ..., 1) so they broadcast against `like`."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def snr_radius(x: Tensor, snr_db: float) -> Tensor:
    """The per-image L2 radius of the SNR budget, r(x, s) = ||x||_2 * 10^(-s/20), shaped (N, 1, ..., 1).

    The perturbations allowed at SNR s are exactly the L2 ball of this radius (`snr_eps` is the side of
    the L-inf cube inscribed in it, r / sqrt(D)).
    """
    return _per_image_shape(per_image_norm(x) * 10.0 ** (-float(snr_db) / 20.0), x)


def snr_eps(x: Tensor, snr_db: float) -> Tensor:
    """The per-image L-inf budget whose sign step reaches `snr_db`: ||x|| / (10^(snr/20) sqrt(D)).

    `snr_db = inf` gives 0. Returns a tensor of x's dtype shaped (N, 1, ..., 1).
    """
    dims = x[0].numel()
    scale = 10.0 ** (float(snr_db) / 20.0) * math.sqrt(dims)
    return _per_image_shape(per_image_norm(x) / scale, x)


def linf_eps(eps_255: float, x: Tensor) -> Tensor:
    """A plain L-inf budget, the same for every image, given in 1/255 units; shaped like `snr_eps`.

    Returned per image (not as a float) so every attack handles both budget kinds with the same code.
    """
    return torch.full((x.shape[0],) + (1,) * (x.dim() - 1), float(eps_255) / 255.0, dtype=x.dtype, device=x.device)


def measured_snr_db(x: Tensor, x_adv: Tensor) -> Tensor:
    """The SNR each image actually got, 20 log10(||x|| / ||x_adv - x||), shape (N,), float32.

    An unchanged image measures +inf (also an unchanged all-zero image); a perturbed all-zero image -inf.
    Call it on the clamped result to see what clamping cost, or on `x + delta` to check the budget.
    """
    signal = per_image_norm(x.float())
    noise = per_image_norm(x_adv.float() - x.float())
    snr = 20.0 * (torch.log10(signal) - torch.log10(noise))
    return torch.where(noise == 0, torch.full_like(snr, math.inf), snr)
