"""Gaussian data augmentation (Cohen, Rosenfeld & Kolter 2019, section 4): the base classifier smoothing needs.

A smoothed classifier g(x) = argmax_c P(f(x + sigma * eps) = c) is only as good as its base network f on noisy
images, so f is trained on them: every training image gets fresh noise of standard deviation `sigma` (pixel
units, images in [0, 1]) or, with `snr`, of per-image level sigma * sqrt(D) = ||x|| 10^(-snr/20) (the study's
SNR axis; the noise's expected L2 norm is then the budget radius of that SNR). Certify with the same level
(`eval=certified` reads it from this defense's keys).

Decisions:

* Every row is noised, as in the paper, and nothing is clamped to [0, 1]: certification draws unclamped noise,
  and training must see the distribution it is certified on.
* `clean_mask` is left as it was: under noise training the noisy images are the network's training
  distribution, so a regularizer composed after this one (`gaussian_smooth`: the Laplacian smoothness) reads
  them as it reads the training images of a noise-free run; the study's regularizer is then judged by the
  certified accuracy of the network it shaped. Compose it after an adversarial defense to noise the adversarial
  rows as well.
* The noise comes from the global generator, like the data augmentation, so a seeded run repeats (and a resumed
  one too: the module checkpoints the generators). No extra forward pass: `extra_passes_per_image` stays 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from adv_smooth.defenses.base import Defense, TrainBatch
from adv_smooth.utils.errors import UserError, is_number, require


@dataclass
class GaussianAugmentation(Defense):
    """Adds N(0, sigma^2 I) to every training image (`sigma` in pixel units, or per image from `snr` dB).

    Args:
        sigma: the noise's standard deviation in pixel units, images in [0, 1] (null: use `snr`).
        snr: with sigma null, the noise level in dB per image: sigma sqrt(D) = ||x|| 10^(-snr/20).
    """

    sigma: float | None = 0.25
    snr: float | None = None

    def __post_init__(self) -> None:
        if (self.sigma is None) == (self.snr is None):
            raise UserError(
                f"sigma={self.sigma!r} and snr={self.snr!r}: set exactly one "
                "(a noise level > 0 in pixel units, or an SNR in dB), the other null"
            )
        if self.sigma is not None:
            require(
                is_number(self.sigma) and 0 < self.sigma <= 100,
                "sigma",
                self.sigma,
                "a level in (0, 100]",
            )
        else:
            require(is_number(self.snr) and abs(self.snr) <= 200, "snr", self.snr, "an SNR in dB")

    def levels(self, x: Tensor) -> Tensor:
        """(N, 1, ..., 1): each image's noise level, broadcastable against `x`."""
        shape = (len(x),) + (1,) * (x.dim() - 1)
        if self.sigma is not None:
            return torch.full(shape, self.sigma, dtype=x.dtype, device=x.device)
        norm = x.detach().flatten(1).norm(dim=1)
        return (norm * 10.0 ** (-self.snr / 20.0) / math.sqrt(x[0].numel())).view(shape)

    def prepare_batch(self, model: nn.Module, batch: TrainBatch) -> TrainBatch:
        x = batch.inputs
        return batch.replace(inputs=x + self.levels(x) * torch.randn_like(x), clean_count=batch.clean_count)
