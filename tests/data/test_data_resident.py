"""Data resident on the device (`adv_smooth/data/resident.py`): the loader Lightning is handed on a single GPU.

The GPU path is exercised on the CPU by letting the rule pick the CPU device: the same `DeviceBatches` then go
through Lightning's fit, validation and test loops (the first GPU run found Lightning refusing them).
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from adv_smooth.data import resident
from adv_smooth.data.base import ImageDataModule, Splits, TensorImages
from adv_smooth.data.resident import DeviceBatches, resident_device
from adv_smooth.utils.errors import UserError


def test_batches_cover_the_split_once_in_order_or_shuffled() -> None:
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    data = TensorImages(images, torch.arange(10))
    ordered = list(DeviceBatches(data, 4, shuffle=False))
    assert [len(y) for _, y in ordered] == [4, 4, 2] and len(DeviceBatches(data, 4, shuffle=False)) == 3
    assert torch.cat([y for _, y in ordered]).tolist() == list(range(10))
    torch.manual_seed(0)
    shuffled = torch.cat([y for _, y in DeviceBatches(data, 4, shuffle=True)])
    assert sorted(shuffled.tolist()) == list(range(10)) and shuffled.tolist() != list(range(10))
    assert all(int(x.flatten()[0]) == int(y) for x, y in DeviceBatches(data, 3, shuffle=True) for x, y in zip(x, y))


def test_rule_keeps_cpu_runs_ddp_and_false_on_the_host() -> None:
    cuda = torch.device("cuda", 0)
    assert resident_device("auto", torch.device("cpu"), 1, 10) is None
    assert resident_device(False, cuda, 1, 10) is None
    assert resident_device(True, cuda, 2, 10) is None  # DDP: every process keeps its own shard's loader
    assert resident_device(True, cuda, 1, 10) == cuda


class _Random(ImageDataModule):
    """`n` random 32x32 uint8 images to train on (the validation split carved by `val_fraction`), `n_test` to test."""

    def __init__(self, n: int, n_test: int = 0, **options) -> None:
        super().__init__(root=".", download=False, **options)
        self.n, self.n_test = n, n_test

    def load_splits(self) -> Splits:
        x = torch.randint(0, 256, (self.n + self.n_test, 3, 32, 32), dtype=torch.uint8)
        y = torch.arange(self.n + self.n_test) % 10
        return Splits(train=(x[: self.n], y[: self.n]), test=(x[self.n :], y[self.n :]), classes=list("0123456789"))


def test_bad_value_is_one_line() -> None:
    with pytest.raises(UserError, match=r"^on_device='yes' is invalid: auto .*, true or false"):
        _Random(8, on_device="yes")


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
        self.seen = {"train": 0, "val": 0, "test": 0}

    def _count(self, stage: str, batch) -> torch.Tensor:
        x, y = batch[:2]
        assert x.dtype == torch.float32 and float(x.min()) >= 0 and float(x.max()) <= 1
        self.seen[stage] += len(y)
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def training_step(self, batch, batch_idx):
        return self._count("train", batch)

    def validation_step(self, batch, batch_idx):
        self._count("val", batch)

    def test_step(self, batch, batch_idx):
        self._count("test", batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_lightning_fits_validates_and_tests_on_resident_batches(monkeypatch) -> None:
    monkeypatch.setattr(resident, "resident_device", lambda on_device, device, world, nbytes: device)
    monkeypatch.setattr("adv_smooth.data.base.resident_device", resident.resident_device)
    data = _Random(40, n_test=12, batch_size=16, eval_batch_size=8, val_fraction=0.25, augment=True)
    module = _Tiny()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=data)
    assert isinstance(trainer.train_dataloader, DeviceBatches)
    trainer.test(module, datamodule=data, verbose=False)
    assert module.seen == {"train": 30, "val": 10, "test": 12}
