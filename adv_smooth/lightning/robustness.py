"""`RobustnessVsSNR`: accuracy clean and under each attack x SNR level, during validation and test.

Attacks run on the batches Lightning already moved to the device (in `on_*_batch_end`), so the
evaluation is batched and costs no second pass over the data. Counts stay on the device and are
summed across processes once per epoch. At validation only the first `val_subset` images of the
(unshuffled) validation split are attacked, a fixed subset, every `val_every_n_epochs` epochs; at
test the whole split is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from adv_smooth.attacks import build_attack, robust_predictions
from adv_smooth.errors import require
from adv_smooth.honesty import check_curves, level_key


class _Tally:
    """Per-image correctness summed over batches, on the device."""

    def __init__(self, attacks: Sequence[str], levels: Sequence[float], device: torch.device) -> None:
        k = len(levels)
        self.n = torch.zeros((), device=device)
        self.clean = torch.zeros((), device=device)
        self.correct = {a: torch.zeros(k, device=device) for a in attacks}
        self.cumulative = {a: torch.zeros(k, device=device) for a in attacks}
        self.snr_sum = {a: torch.zeros(k, device=device, dtype=torch.float64) for a in attacks}
        self.snr_count = {a: torch.zeros(k, device=device) for a in attacks}

    def tensors(self) -> list[Tensor]:
        return [self.n, self.clean, *self.correct.values(), *self.cumulative.values(),
                *self.snr_sum.values(), *self.snr_count.values()]


class RobustnessVsSNR(pl.Callback):
    """Robust accuracy vs SNR for each configured attack (`attacks: {name: options}`)."""

    def __init__(
        self,
        attacks: Mapping[str, Mapping[str, Any] | None] | None = None,
        snr_levels: Sequence[float] = (50, 45, 40, 33),
        val_subset: int = 512,
        val_every_n_epochs: int = 1,
        log_figure: bool = True,
    ) -> None:
        attacks = dict(attacks if attacks is not None else {"fgsm": {}, "pgd": {}})
        levels = [float(s) for s in snr_levels]
        require(len(levels) > 0 and all(s > 0 for s in levels), "eval.snr_levels", list(snr_levels),
                "a non-empty list of SNRs in dB, each > 0")
        require(isinstance(val_subset, int) and val_subset >= 0, "eval.val_subset", val_subset, "an integer >= 0")
        require(isinstance(val_every_n_epochs, int) and val_every_n_epochs >= 1, "eval.val_every_n_epochs",
                val_every_n_epochs, "an integer >= 1")
        self.attacks = {name: build_attack(name, **dict(opts or {})) for name, opts in attacks.items()}
        self.levels = sorted(levels, reverse=True)
        self.val_subset = val_subset
        self.val_every_n_epochs = val_every_n_epochs
        self.log_figure = log_figure
        self._tally: _Tally | None = None
        self._seen = 0
        self._results: dict[str, Any] = {}

    # -- Lightning hooks -------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(pl_module) if self._active_val(trainer) else self._stop()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._tally is not None:
            x, y = batch
            keep = max(0, min(len(y), self.val_subset - self._seen))
            self._seen += len(y)
            if keep:
                self._accumulate(trainer, pl_module, x[:keep], y[:keep])

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._tally is not None:
            self._finish(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x, y = batch
        self._accumulate(trainer, pl_module, x, y)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finish(trainer, pl_module, "test")

    def results(self) -> dict[str, Any]:
        """Merged into results.json by the entry points."""
        return dict(self._results)

    # -- accumulation ----------------------------------------------------------------------------------
    def _active_val(self, trainer: pl.Trainer) -> bool:
        if trainer.sanity_checking or self.val_subset == 0:
            return False
        last = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
        return last or (trainer.current_epoch + 1) % self.val_every_n_epochs == 0

    def _start(self, pl_module: pl.LightningModule) -> None:
        self._tally = _Tally(list(self.attacks), self.levels, pl_module.device)
        self._seen = 0

    def _stop(self) -> None:
        self._tally = None

    def _accumulate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, x: Tensor, y: Tensor) -> None:
        """Attack one batch and add its counts to the tally, on the device (no read-back until the epoch end).

        The attacks run in the trainer's precision context, as `test_step` does: under `bf16-mixed` the model
        is attacked and judged in the precision it is evaluated in (and twice as fast on a GPU); the
        perturbations themselves stay in the images' float32.
        """
        tally = self._tally
        net = getattr(pl_module, "net", pl_module)
        tally.n += len(y)
        clean_done = False
        for name, attack in self.attacks.items():
            with trainer.precision_plugin.forward_context():
                out = robust_predictions(net, x, y, attack, self.levels)
            if not clean_done:
                tally.clean += out["clean"].sum()
                clean_done = True
            for i, level in enumerate(self.levels):
                tally.correct[name][i] += out["correct"][level].sum()
                tally.cumulative[name][i] += out["cumulative"][level].sum()
                snr = out["measured_snr_db"][level]
                finite = torch.isfinite(snr)  # no boolean indexing: that would wait for the device
                tally.snr_sum[name][i] += torch.where(finite, snr.double(), 0.0).sum()
                tally.snr_count[name][i] += finite.sum()

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        tally, self._tally = self._tally, None
        values = [trainer.strategy.reduce(t.clone(), reduce_op="sum") for t in tally.tensors()]
        it = iter(values)
        n, clean = next(it), next(it)
        names = list(self.attacks)
        correct = {a: next(it) for a in names}
        cumulative = {a: next(it) for a in names}
        snr_sum = {a: next(it) for a in names}
        snr_count = {a: next(it) for a in names}
        n_images = max(int(n.item()), 1)
        clean_acc = float(clean) / n_images

        curves: dict[str, dict[float, float]] = {}
        summary: dict[str, Any] = {"n": int(n.item()), "clean_acc": clean_acc, "attacks": {}}
        for a in names:
            acc = (correct[a] / n_images).tolist()
            cum = (cumulative[a] / n_images).tolist()
            measured = (snr_sum[a] / snr_count[a].clamp_min(1)).tolist()
            curves[a] = dict(zip(self.levels, acc))
            summary["attacks"][a] = {
                "levels": self.levels,
                "acc": {level_key(s): v for s, v in zip(self.levels, acc)},
                "cumulative_acc": {level_key(s): v for s, v in zip(self.levels, cum)},
                "measured_snr_db": {level_key(s): v for s, v in zip(self.levels, measured)},
            }
            for s, v, c, m in zip(self.levels, acc, cum, measured):
                key = f"{stage}/{a}/{level_key(s)}"
                pl_module.log(f"{key}/acc", v, sync_dist=False)
                pl_module.log(f"{key}/cumulative_acc", c, sync_dist=False)
                pl_module.log(f"{key}/measured_snr_db", m, sync_dist=False)

        warnings = check_curves(clean_acc, curves)
        summary["honesty"] = warnings
        self._results.setdefault("robustness", {})[stage] = summary
        if stage == "test":
            self._results["honesty"] = {"warnings": warnings}
            for w in warnings:
                rank_zero_warn(f"honesty check: {w['message']}")
        if self.log_figure:
            self._log_figure(trainer, stage, clean_acc, curves)

    def _log_figure(self, trainer: pl.Trainer, stage: str, clean_acc: float, curves: dict) -> None:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or trainer.global_rank != 0:
            return
        fig = accuracy_vs_snr_figure(clean_acc, curves)
        for lg in loggers:
            lg.experiment.add_figure(f"{stage}/robustness_vs_snr", fig, global_step=trainer.global_step)


def accuracy_vs_snr_figure(clean_acc: float, curves: Mapping[str, Mapping[float, float]]):
    """Accuracy (%) vs SNR (dB, decreasing to the right = more noise), one curve per attack."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        levels = sorted(curve, reverse=True)
        ax.plot(levels, [100 * curve[s] for s in levels], marker="o", label=name)
    ax.axhline(100 * clean_acc, color="grey", linestyle="--", label="clean")
    ax.invert_xaxis()
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
