"""A CSV logger that keeps what its file already holds, and a TensorBoard logger whose epoch counter is a training
curve (`train/epoch`).

Lightning's `CSVLogger` deletes `metrics.csv` when its directory is not empty. Runs here log into a fixed
directory of their run dir (`version: ""`), so resuming a killed run there (`resume=last`) would erase the
history of every epoch before the crash. This one appends instead; rows logged between the last checkpoint
and the crash stay in the file, and the resumed run logs those steps again after them.
"""

from __future__ import annotations

import csv
from typing import Any

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers import TensorBoardLogger as _TensorBoardLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        """Adopt the existing header instead of deleting the file, so `save()` appends under it (and rewrites
        the file with a wider header, rows kept, when a new metric appears)."""
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


class AppendingCSVLogger(CSVLogger):
    """`CSVLogger` whose `metrics.csv` survives a restart in the same directory."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class TensorBoardLogger(_TensorBoardLogger):
    """Lightning's `TensorBoardLogger`, shaped for reading curves: the epoch counter logged as `train/epoch` (among
    the training curves) rather than `epoch`, a chart that headed TensorBoard's SCALARS tab before any curve; and of
    the test split's single values only the headline ones (`test/acc`, `test/loss`, `test/worst/...`, which HPARAMS
    reads), not one one-dot chart per attack, level and figure (a dozen or more, sorted above the training curves):
    those are in results.json, metrics.csv with `logger=many`, and as a curve in the IMAGES tab's robustness figure."""

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        metrics = {EPOCH_TAG if k == "epoch" else k: v for k, v in metrics.items() if not _test_detail(k)}
        if metrics:
            super().log_metrics(metrics, step)


EPOCH_TAG = "train/epoch"
TEST_HEADLINES = ("test/acc", "test/loss", "test/worst/")


def _test_detail(tag: str) -> bool:
    """A per-attack test figure (`test/pgd/snr33/acc`, `test/certified/...`), not a headline."""
    return tag.startswith("test/") and not tag.startswith(TEST_HEADLINES)
