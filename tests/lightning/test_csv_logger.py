"""The CSV logger keeps the rows of a run that is resumed in the same directory."""

from __future__ import annotations

import csv

from adv_smooth.lightning.loggers import AppendingCSVLogger


def _log(root, rows: list[dict[str, float]], first_step: int) -> None:
    logger = AppendingCSVLogger(str(root), name="csv", version="")
    for i, row in enumerate(rows):
        logger.log_metrics(row, step=first_step + i)
    logger.save()
    logger.finalize("success")


def _read(root) -> list[dict[str, str]]:
    with open(root / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_restart_appends_and_widens_the_header(tmp_path) -> None:
    _log(tmp_path, [{"train/loss": 2.0}, {"train/loss": 1.5}], first_step=0)  # the run before the crash
    _log(tmp_path, [{"train/loss": 1.0}], first_step=2)  # resumed: same columns, appended
    _log(tmp_path, [{"train/loss": 0.5, "val/acc": 0.9}], first_step=3)  # a new metric: header widened
    rows = _read(tmp_path)
    assert [r["step"] for r in rows] == ["0", "1", "2", "3"]
    assert [float(r["train/loss"]) for r in rows] == [2.0, 1.5, 1.0, 0.5]
    assert [r["val/acc"] for r in rows] == ["", "", "", "0.9"]
