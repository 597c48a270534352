"""The one LightningModule: cross-entropy training of any network, with a defense's hooks.

The module owns the training loop's bookkeeping (loss terms, metrics, optimizer) and nothing
defense-specific: everything a defense does goes through the `Defense` hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.seed import isolate_rng
from torch import Tensor, nn

from adv_smooth.defenses import Defense, TrainBatch
from adv_smooth.defenses.objective import training_objective
from adv_smooth.lightning.metrics import Accuracy
from adv_smooth.utils.checkpoints import rng_states, set_rng_states


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN/inf: training stops before any checkpoint stores the broken weights."""


class RobustClassifier(pl.LightningModule):
    """Wraps `net` (images in [0, 1] -> logits) and a `defense`.

    `optimizer` and `scheduler` are partials (Hydra `_partial_: true`) completed with the parameters.
    Non-finite losses are detected on the device and checked only every `finite_check_every` steps
    and before validation, so no per-step host sync is added.

    Checkpoints carry the random generators (`rng_states`), restored when a fit resumes, so a run
    resumed from an epoch-end checkpoint draws the same shuffles and noise as an uninterrupted one.
    """

    def __init__(
        self,
        net: nn.Module,
        defense: Defense | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        finite_check_every: int = 10,
    ) -> None:
        super().__init__()
        self.net = net
        self.defense = defense or Defense()
        self.optimizer_factory = optimizer or (lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9))
        self.scheduler_factory = scheduler
        self.finite_check_every = max(1, finite_check_every)
        self.train_acc = Accuracy()  # on the clean samples of each training batch
        self.val_acc = Accuracy()
        self.test_acc = Accuracy()
        self._bad_step: Tensor | None = None
        self._bad_term: Tensor | None = None
        self._term_names: list[str] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    # -- training --------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        # Isolated: a resumed fit restores the generators before this hook and calibrates again, and
        # that calibration must not shift the stream the next epoch draws from.
        with isolate_rng():
            self.defense.setup(self, self.trainer.datamodule)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """`batch` is (images, labels), or (images, labels, n) when the data module left the last n rows
        un-augmented (`dataset.unaugmented_fraction`): only those count as clean for the regularizers."""
        x, y, *rest = batch
        step = training_objective(self.net, self.defense, TrainBatch.clean(x, y, *rest))
        terms, loss, tb = step.terms, step.loss, step.batch
        self._record_nonfinite(terms, loss)

        n = x.shape[0]
        for name, value in terms.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=True, batch_size=n)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=n)
        self.train_acc.update(step.logits.detach(), tb.targets, tb.clean_mask)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.defense.after_optimizer_step(self.net)
        if (self.global_step % self.finite_check_every) == 0:
            self._raise_if_nonfinite()

    def on_validation_epoch_start(self) -> None:
        self._raise_if_nonfinite()

    def on_train_epoch_end(self) -> None:
        self._raise_if_nonfinite()

    # -- evaluation ------------------------------------------------------------------------------
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str, metric: Accuracy) -> None:
        x, y = batch
        logits = self.net(x)
        # sync_dist: under DDP, the mean over every process's images (weighted by their batch sizes), not rank 0's
        self.log(f"{stage}/loss", F.cross_entropy(logits, y), batch_size=x.shape[0], sync_dist=True)
        metric.update(logits, y)
        self.log(f"{stage}/acc", metric, prog_bar=True, batch_size=x.shape[0])

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        if hasattr(scheduler, "set_total_steps"):  # a per-step schedule sized by the fit (CosineRestarts)
            scheduler.set_total_steps(int(self.trainer.estimated_stepping_batches))
        interval = getattr(scheduler, "interval", "epoch")
        # named under train/: the learning-rate curve sits with the training curves, not first in TensorBoard
        schedule = {"scheduler": scheduler, "interval": interval, "name": "train/lr"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    # -- checkpoints ------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to save broken weights; store the generators the next epoch starts drawing from.

        Lightning calls this before writing the file, and callbacks (a step-scheduled ModelCheckpoint)
        run before this module's own per-step check: raising here is what guarantees that no
        checkpoint, `last.ckpt` included, is ever overwritten with non-finite weights.
        """
        self._raise_if_nonfinite()
        if not bool(torch.stack([torch.isfinite(p).all() for p in self.parameters()]).all()):  # one host sync
            raise NonFiniteLossError(
                f"the weights became non-finite by step {self.global_step}; training stopped before "
                "checkpointing them (lower optim.lr, or the defense's weight)"
            )
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """When resuming a fit, continue the random streams where the checkpoint left them.

        Lightning restores this before the train loader's iterator is created, matching the point
        where an uninterrupted run saved it. Test/validate loads of a checkpoint keep the generators.
        """
        states = checkpoint.get("rng_states")
        if states is not None and self._trainer is not None and self.trainer.state.fn == TrainerFn.FITTING:
            set_rng_states(states)

    # -- non-finite detection --------------------------------------------------------------------
    def _record_nonfinite(self, terms: dict[str, Tensor], loss: Tensor) -> None:
        """Remember (on the device) the first step and term whose value was not finite."""
        values = torch.stack([t.detach().float() for t in terms.values()] + [loss.detach().float()])
        self._term_names = [*terms, "loss"]
        bad = ~torch.isfinite(values)
        if self._bad_step is None:
            self._bad_step = torch.full((), -1, dtype=torch.long, device=values.device)
            self._bad_term = torch.full((), -1, dtype=torch.long, device=values.device)
        first = (self._bad_step < 0) & bad.any()
        step = torch.full((), self.global_step, dtype=torch.long, device=values.device)
        self._bad_step = torch.where(first, step, self._bad_step)
        self._bad_term = torch.where(first, bad.long().argmax(), self._bad_term)

    def _raise_if_nonfinite(self) -> None:
        if self._bad_step is None or int(self._bad_step) < 0:
            return
        term = self._term_names[int(self._bad_term)]
        raise NonFiniteLossError(
            f"loss term 'train/{term}' became non-finite at step {int(self._bad_step)}; training stopped "
            "before checkpointing these weights (lower optim.lr, or the defense's weight)"
        )
