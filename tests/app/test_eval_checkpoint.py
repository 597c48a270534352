"""`eval.checkpoint`: the test split sees the best-on-validation weights (default) or the last epoch's (the
original code's choice, set by the table presets)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl

from adv_smooth.app.training_run import train


@pytest.mark.slow
@pytest.mark.parametrize("choice", ["best", "last"])
def test_the_tested_weights_follow_eval_checkpoint(choice: str, make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []
    real_test = pl.Trainer.test

    def spy(self, *args, ckpt_path=None, **kwargs):
        seen.append(ckpt_path)
        return real_test(self, *args, ckpt_path=ckpt_path, **kwargs)

    monkeypatch.setattr(pl.Trainer, "test", spy)
    cfg = make_config(
        f"eval.checkpoint={choice}",
        "+trainer.limit_train_batches=2",
        "eval.snr_levels=[33]",
        "eval.val_subset=0",
        "+trainer.limit_test_batches=1",
        "eval.sanity_snr_db=null",
    )
    results = train(cfg)
    assert results["best_checkpoint"]  # a best checkpoint exists either way ...
    assert seen == ([results["best_checkpoint"]] if choice == "best" else [None])  # ... None: the weights in memory
