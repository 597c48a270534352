"""`ProgressBar`: Lightning's TQDM bar without `v_num`.

Lightning shows the logger's version as `v_num`, cut to its last 4 characters when it is a string: this project
names each TensorBoard run by its overrides (`defense=adv,seed=1`, `utils/run_name.py`), so the bar read
`v_num=,20]` or `v_num=6096`, a fragment that means nothing. The run's name is in its run dir and in TensorBoard.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    """`TQDMProgressBar` (same arguments) whose metrics leave out `v_num`."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = dict(super().get_metrics(trainer, pl_module))
        metrics.pop("v_num", None)
        return metrics
