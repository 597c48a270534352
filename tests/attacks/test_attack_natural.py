"""Natural noise (`attacks/natural.py`): each law at exactly the level's L2 energy after clamping, and each law's
own shape (impulses at the box's ends, shot noise growing with intensity, low-frequency noise smooth)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adv_smooth.attacks import measured_snr_db
from adv_smooth.attacks.natural import KINDS, NaturalNoise
from adv_smooth.utils.errors import UserError

NET = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10))


def _images() -> torch.Tensor:
    return torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def _noise(kind: str, x: torch.Tensor, snr: float, norm: str = "l2", seed: int = 0) -> torch.Tensor:
    attack = NaturalNoise(kind=kind, norm=norm, generator=torch.Generator().manual_seed(seed))
    return attack.perturb(NET, x, torch.zeros(len(x), dtype=torch.long), snr)


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_law_lands_on_the_level_after_clamping(kind: str, norm: str) -> None:
    x = _images()
    for snr in (40.0, 20.0, 10.0):  # 10 dB clamps a good share of the values, yet stays reachable
        x_adv = _noise(kind, x, snr, norm)
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        assert torch.allclose(measured_snr_db(x, x_adv), torch.full((len(x),), snr), atol=1e-3), (kind, snr)
    assert torch.equal(_noise(kind, x, 20.0), _noise(kind, x, 20.0)), "seeded: the same draw"


def test_an_unreachable_level_is_as_close_as_the_box_allows_and_says_so() -> None:
    x = torch.ones(2, 3, 16, 16)  # every value at the top: noise can only go down
    x_adv = _noise("gaussian", x, -10.0)
    measured = measured_snr_db(x, x_adv)
    assert (measured > -10.0).all() and torch.isfinite(measured).all()


def test_impulses_go_to_the_ends_of_the_box() -> None:
    x = 0.2 + 0.6 * _images()
    delta = _noise("impulse", x, 15.0) - x
    changed = delta.abs() > 1e-6
    ends = ((x + delta - 1).abs() < 1e-6) | ((x + delta).abs() < 1e-6)
    per_image_partial = (changed & ~ends).flatten(1).sum(dim=1)
    assert (per_image_partial <= 1).all(), "all but at most one value of an image set to 0 or 1"
    assert changed.flatten(1).float().mean(dim=1).max() < 0.5, "sparse: impulses, not a wash"


def test_shot_noise_grows_with_intensity_and_spares_black() -> None:
    x = _images()
    x[:, :, :8] = 0.0  # a black half
    delta = _noise("shot", x, 20.0) - x
    assert (delta[:, :, :8] == 0).all()
    bright, dim = x[:, :, 8:] > 0.7, (x[:, :, 8:] > 0.05) & (x[:, :, 8:] < 0.3)
    assert delta[:, :, 8:][bright].std() > 1.5 * delta[:, :, 8:][dim].std()


def test_low_frequency_noise_is_smooth() -> None:
    x = 0.3 + 0.4 * _images()  # nothing clamped at 30 dB

    def roughness(delta: torch.Tensor) -> float:
        return float((delta[..., 1:] - delta[..., :-1]).abs().mean() / delta.abs().mean())

    low, white = _noise("lowfreq", x, 30.0) - x, _noise("gaussian", x, 30.0) - x
    assert roughness(low) < 0.5 * roughness(white)


def test_a_bad_kind_is_refused() -> None:
    with pytest.raises(UserError, match="kind='pink' is invalid"):
        NaturalNoise(kind="pink")
