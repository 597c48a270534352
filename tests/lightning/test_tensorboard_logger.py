"""The TensorBoard logger is shaped for reading curves: the epoch counter among the training curves, and of the
test split's single values only the headlines (HPARAMS reads them), not a one-dot chart per attack and level."""

from __future__ import annotations

from pathlib import Path

from adv_smooth.lightning.loggers import TensorBoardLogger


def _tags(directory: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_tensorboard_keeps_curves_and_test_headlines_only(tmp_path: Path) -> None:
    logger = TensorBoardLogger(save_dir=str(tmp_path), name="", version="run")
    logger.log_metrics({"epoch": 0, "train/loss": 1.0, "val/acc": 0.5}, step=0)
    logger.log_metrics(
        {
            "test/acc": 0.9,
            "test/loss": 0.3,
            "test/worst/snr33/acc": 0.7,
            "test/pgd/snr33/acc": 0.75,
            "test/pgd/snr33/measured_snr_db": 33.0,
            "test/certified/snr33/acc": 0.6,
        },
        step=10,
    )
    logger.finalize("success")
    assert _tags(Path(logger.log_dir)) == {
        "train/epoch",
        "train/loss",
        "val/acc",
        "test/acc",
        "test/loss",
        "test/worst/snr33/acc",
    }
