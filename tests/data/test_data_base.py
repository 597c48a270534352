"""The base-class behaviour the dataset loaders rely on: mean/std handling and batch augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from adv_smooth.data.base import ImageDataModule, Splits, augment, channel_stats
from adv_smooth.utils.errors import UserError


class _Fixed(ImageDataModule):
    """An in-memory dataset of random images, for exercising the base class alone."""

    def load_splits(self) -> Splits:
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8, generator=g)
        y = torch.arange(10) % 2
        return Splits(train=(x, y), test=(x[:4], y[:4]), classes=["a", "b"])


def test_channel_stats_match_numpy() -> None:
    x = torch.randint(0, 256, (9000, 3, 4, 4), dtype=torch.uint8)  # > one 4096-image chunk
    mean, std = channel_stats(x)
    ref = x.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3)), atol=1e-12)


def test_config_lists_become_float_tuples() -> None:
    dm = _Fixed(mean=OmegaConf.create([0.5, 0.5, 0.5]), std=OmegaConf.create([1, 1, 1]))
    assert dm.mean == (0.5, 0.5, 0.5) and dm.std == (1.0, 1.0, 1.0)
    assert all(type(v) is float for v in dm.std)


def test_normalize_false_wins_over_explicit_statistics() -> None:
    dm = _Fixed(normalize=False, mean=(0.4, 0.4, 0.4), std=(0.2, 0.2, 0.2))
    assert dm.mean == (0.0, 0.0, 0.0) and dm.std == (1.0, 1.0, 1.0)


def test_statistics_must_have_one_value_per_channel() -> None:
    with pytest.raises(UserError, match="^mean=.* 3 values"):
        _ = _Fixed(mean=(0.5,), std=(0.2,)).mean


def _augment_by_indexing(x: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """The earlier, obviously-correct formulation (per-image index grids + advanced indexing)."""
    n, _, h, w = x.shape
    if padding > 0:
        padded = torch.nn.functional.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :]
        x = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    if flip:
        flip_mask = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip_mask[:, None, None, None], x.flip(3), x)
    return x


@pytest.mark.parametrize(
    ("shape", "padding", "flip"),
    [
        ((64, 3, 32, 32), 4, True),
        ((64, 3, 32, 32), 4, False),
        ((16, 1, 8, 8), 0, True),
        ((16, 3, 64, 64), 8, True),
        ((8, 3, 12, 20), 2, True),
    ],
)
def test_augment_matches_the_indexing_formulation(shape: tuple, padding: int, flip: bool) -> None:
    x = torch.rand(shape)
    ours = augment(x, padding, flip, torch.Generator().manual_seed(7))
    reference = _augment_by_indexing(x, padding, flip, torch.Generator().manual_seed(7))
    assert torch.equal(ours, reference)


def test_augment_is_a_crop_of_the_padded_image() -> None:
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6) + 1
    out = augment(x, 2, False, torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(x, (2,) * 4)
    for i in range(2):
        windows = [padded[i, :, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], win) for win in windows)
    assert torch.equal(augment(x, 0, False), x)


def _training_batch(dm: ImageDataModule, n: int = 10) -> tuple:
    from types import SimpleNamespace

    dm.trainer = SimpleNamespace(training=True)  # on_after_batch_transfer augments only while training
    x = torch.randint(1, 256, (n, 3, 8, 8), dtype=torch.uint8)
    return x, dm.on_after_batch_transfer((x, torch.arange(n)), 0)


@pytest.mark.parametrize(("fraction", "kept"), [(0.5, 5), (0.25, 2), (1.0, 10), (0.04, 0)])
def test_unaugmented_fraction_leaves_the_last_rows_alone_and_says_how_many(fraction: float, kept: int) -> None:
    torch.manual_seed(0)
    x, out = _training_batch(_Fixed(augment=True, flip=True, padding=2, unaugmented_fraction=fraction))
    images = out[0]
    assert torch.equal(images[10 - kept :], x[10 - kept :].float() / 255)  # untouched
    assert (images[: 10 - kept] != x[: 10 - kept].float() / 255).flatten(1).any(1).all()  # cropped / flipped
    assert out[2:] == ((kept,) if kept else ())  # (x, y, n): n rows un-augmented; (x, y) when none is


def test_no_unaugmented_rows_without_augmentation_or_at_evaluation() -> None:
    _, out = _training_batch(_Fixed(augment=False, unaugmented_fraction=0.5))
    assert len(out) == 2
    dm = _Fixed(augment=True, unaugmented_fraction=0.5)
    _training_batch(dm)
    dm.trainer.training = False
    assert len(dm.on_after_batch_transfer((torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.arange(4)), 0)) == 2


@pytest.mark.parametrize("fraction", [-0.1, 1.5, True])
def test_unaugmented_fraction_outside_unit_interval_is_refused(fraction: object) -> None:
    with pytest.raises(UserError, match=r"^unaugmented_fraction=.* is invalid: a number in \[0, 1\]"):
        _Fixed(unaugmented_fraction=fraction)


def test_val_fraction_zero_trains_on_every_image_and_fixed_statistics_are_kept() -> None:
    lpn = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    dm = _Fixed(val_fraction=0.0, mean=lpn[0], std=lpn[1])
    dm.setup()
    assert len(dm.train_set) == 10 and len(dm.val_set) == 0
    assert (dm.mean, dm.std) == lpn  # not the statistics of these random images
    assert len(dm.val_dataloader()) == 0


@pytest.mark.parametrize("pad_mode", ["zeros", "reflect"])
def test_the_crop_pads_as_asked(pad_mode: str) -> None:
    """`dataset.pad_mode`: zeros puts black borders into the crop, reflect mirrors the image at its edges (as many
    plain training loops do): each crop equals the padded image's window at the drawn offset."""
    x = torch.rand(16, 3, 8, 8) * 0.8 + 0.1  # no pixel is 0
    g = torch.Generator().manual_seed(0)
    out = augment(x, 2, False, generator=g, pad_mode=pad_mode)
    g = torch.Generator().manual_seed(0)
    dy, dx = torch.randint(0, 5, (16,), generator=g), torch.randint(0, 5, (16,), generator=g)
    padded = torch.nn.functional.pad(x, (2,) * 4, mode="constant" if pad_mode == "zeros" else "reflect")
    for i in range(16):
        torch.testing.assert_close(out[i], padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8])
    shifted = (dy != 2) | (dx != 2)
    assert ((out[shifted] == 0).any().item()) == (pad_mode == "zeros"), "zeros: black borders; reflect: none"
    with pytest.raises(UserError, match="pad_mode='mirror' is invalid: one of zeros, reflect"):
        ImageDataModule(pad_mode="mirror")
