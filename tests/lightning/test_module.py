"""The LightningModule: a fast_dev_run, real learning on digits, non-finite loss handling."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from adv_smooth.app.build import build_datamodule, build_defense, build_module
from adv_smooth.defenses import Defense
from adv_smooth.lightning import NonFiniteLossError, RobustClassifier
from adv_smooth.models import PreActResNet
from tests.conftest import quiet_trainer


def test_fast_dev_run(make_config) -> None:
    cfg = make_config()
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm, build_defense(cfg.defense))
    trainer = quiet_trainer(fast_dev_run=2)
    trainer.fit(module, datamodule=dm)
    assert {"train/ce", "train/loss", "val/acc"} <= set(trainer.callback_metrics)


@pytest.mark.slow
def test_learns_digits_well_above_chance(make_config) -> None:
    cfg = make_config("optim.milestones=[4]")
    pl.seed_everything(0)
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm, build_defense(cfg.defense))
    trainer = quiet_trainer(max_epochs=6)
    trainer.fit(module, datamodule=dm)
    trainer.test(module, datamodule=dm, verbose=False)
    acc = float(trainer.callback_metrics["test/acc"])
    assert acc > 0.8, acc  # chance is 0.1


class _ExplodingDefense(Defense):
    def loss_terms(self, batch, logits, activations):
        return {"boom": logits.sum() * float("nan")}


def test_non_finite_loss_stops_before_checkpointing(tmp_path) -> None:
    from pytorch_lightning.callbacks import ModelCheckpoint

    net = PreActResNet(10, 1, width=4, blocks=(1,))
    module = RobustClassifier(net, _ExplodingDefense(), finite_check_every=1)
    x = torch.rand(64, 1, 16, 16)
    y = torch.randint(0, 10, (64,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        callbacks=[ckpt],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(NonFiniteLossError, match=r"train/boom.*step 0"):
        trainer.fit(module, loader, loader)
    assert not list(tmp_path.glob("*.ckpt"))
