"""`RobustnessVsSNR`: accuracy clean and under each attack x SNR level, during validation and test.

A Lightning adapter over the evaluation engine (`robustness/evaluator.py: Evaluator`, the one `evaluate_model`
runs): this module only chooses the images (the validation plan, each process's shard) and gathers, logs and
saves what the engine returns. Attacks run on the batches Lightning already moved to the device (in
`on_*_batch_end`), so the evaluation is batched and costs no second pass over the data. Per-image outcomes stay
on the device until the epoch ends, are gathered across processes once (under DDP each process evaluates its own
unpadded shard, `data/sharding.py`, and the shards merge by split index, each image once), and become `Records`
(`adv_smooth/robustness/records.py`): every number of the summary, the `worst` cascade, the minimal-SNR curve
and the honesty checks are computed from them, and the test split's records are saved beside results.json
(`per_image_test.npz`) so reports can pair runs image by image. At validation only the first `val_subset` images
of the (unshuffled) validation split are attacked, every `val_every_n_epochs` epochs, by default with one cheap
attack at one level, sized to a budget relative to training (`lightning/validation_plan.py`,
`robustness/budget_plan.py`); at test the whole split is (or the `eval.test_subset` that
`lightning/test_subset.py` chose), with every attack at every level.

Attacks come built (Hydra instantiates `eval.attacks.<label>` from `conf/attack/*.yaml`); a plain
mapping with a `_target_` is instantiated here, so the callback can also be made by hand.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from adv_smooth.attacks.base import Attack
from adv_smooth.data.sharding import sample_order
from adv_smooth.lightning.checkpointing import ROBUST
from adv_smooth.lightning.distributed import gather_objects
from adv_smooth.lightning.test_subset import SubsetImages
from adv_smooth.lightning.validation_plan import plan_for, validation_request
from adv_smooth.robustness.attack_configs import check_levels, default_attacks
from adv_smooth.robustness.batch import attack_levels, weak_to_strong
from adv_smooth.robustness.certify import build_certifier
from adv_smooth.robustness.curves import accuracy_vs_snr_figure, save_figure, scalars
from adv_smooth.robustness.evaluator import TEST_STAGE, Evaluation, Evaluator
from adv_smooth.robustness.progress import EvaluationProgress, info_line
from adv_smooth.robustness.records import Records, merge
from adv_smooth.utils.errors import is_int, require

RECORDS_FILE = "per_image_{stage}.npz"
FIGURE_FILE = "robustness_test.png"


class RobustnessVsSNR(pl.Callback):
    """Robust accuracy vs SNR for each configured attack (`attacks: {label: attack}`), with per-image records.

    Args:
        attacks: label -> built `Attack` (the entry points build them from `eval.attacks`); default FGSM and
            10-step PGD in L-inf.
        snr_levels: the SNR budgets in dB.
        val_subset / val_every_n_epochs / val_attacks / val_snr_levels: the validation-time evaluation: images
            (0: none), epochs between evaluations, attack labels and levels ("all": the test's); None: from
            `val_budget`, the share of the training passes it may cost (`lightning/validation_plan.py`).
        cascade: AutoAttack's cascade (each attack runs only on the images still robust; the `worst`
            verdict is unchanged; each attack's accuracy is cumulative: robust after it and every earlier one).
        worst: report the per-image worst case over every SNR-budget attack.
        sanity_snr_db: also attack the test split at this very low SNR (accuracy should approach 0);
            None: off.
        save_records: write the test split's per-image records beside results.json.
        certify: `robustness/certify.py`'s options (`eval.certify`): also certify the test split's images by
            randomized smoothing (per-image records, the certified accuracy at each level); None: off.
        eot_samples: passes the attacks average per step on a model found random (EOT; `eval.eot_samples`).
    """

    def __init__(
        self,
        attacks: Mapping[str, Attack] | None = None,
        snr_levels: Sequence[float] = (50, 45, 40, 33),
        val_subset: int | None = None,
        val_every_n_epochs: int | None = None,
        val_attacks: Sequence[str] | str | None = None,
        val_snr_levels: Sequence[float] | str | None = None,
        val_budget: float = 0.1,
        log_figure: bool = True,
        cascade: bool = False,
        worst: bool = True,
        sanity_snr_db: float | None = None,
        save_records: bool = True,
        seed: int | None = None,
        certify: Mapping[str, Any] | None = None,
        eot_samples: int = 20,
    ) -> None:
        levels = check_levels(snr_levels)
        require(
            sanity_snr_db is None or (isinstance(sanity_snr_db, (int, float)) and math.isfinite(sanity_snr_db)),
            "sanity_snr_db",
            sanity_snr_db,
            "null or a finite SNR in dB (e.g. 0)",
        )
        self.attacks = default_attacks() if attacks is None else dict(attacks)
        for label, attack in self.attacks.items():
            require(isinstance(attack, Attack), f"attacks.{label}", attack, "a built attack (an Attack)")
        require(len(self.attacks) > 0, "attacks", {}, "at least one attack")
        self.levels = weak_to_strong(levels)
        self.val_request = validation_request(
            self.attacks, self.levels, val_subset, val_every_n_epochs, val_attacks, val_snr_levels, val_budget
        )
        self.val_plan = None  # planned at the first validation, when the trainer knows its loaders
        self.val_subset, self.val_every_n_epochs = val_subset, val_every_n_epochs  # the plan's once planned
        self.log_figure = log_figure
        self.cascade = bool(cascade)
        self.worst = bool(worst)
        self.sanity_snr_db = None if sanity_snr_db is None else float(sanity_snr_db)
        self.save_records = bool(save_records)
        self.results_dir: str | None = None  # where records and figure go (the task's staging dir); None: the run dir
        require(
            seed is None or is_int(seed),
            "seed",
            seed,
            "null (the run's seed) or an integer",
        )
        self.seed = seed
        self.certifier = build_certifier(certify)
        # the test's engine (every attack and level, the sanity check, certification); validation runs a subset
        self.engine = Evaluator(
            self.attacks,
            self.levels,
            cascade,
            sanity_snr_db,
            worst=worst,
            certifier=self.certifier,
            eot_samples=eot_samples,
        )
        self._now = self.engine  # this stage's
        self._evaluation: Evaluation | None = None  # the split being evaluated (None: none this epoch)
        self._progress: EvaluationProgress | None = None  # the test evaluation's progress (rank 0's bar or lines)
        self._seen = 0
        self._order: Tensor | None = None  # the split index of each image this process sees, in order
        self._subset: SubsetImages | None = None  # the test images evaluated, when only some (eval.test_subset)
        self._results: dict[str, Any] = {}
        self.records: dict[str, Records] = {}

    # -- Lightning hooks -------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return self._stop()
        if self.val_plan is None:
            self.val_plan, attacks, levels = plan_for(trainer, pl_module, self.attacks, self.levels, self.val_request)
            self.val_subset, self.val_every_n_epochs = self.val_plan.subset, self.val_plan.every_n_epochs
            self._val = self.engine.subset(attacks, levels)
        self._now = self._val
        self._start(trainer.current_epoch, trainer.val_dataloaders) if self._active_val(trainer) else self._stop()
        self._start_progress(trainer, "val")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._evaluation is not None:
            x, y = batch
            index = self._split_index(len(y))
            keep = torch.nonzero(index < self.val_subset).flatten()  # the split's first images, on any process
            if len(keep) == len(y):
                self._accumulate(trainer, pl_module, x, y, index)
            elif len(keep):
                on = keep.to(y.device)
                self._accumulate(trainer, pl_module, x[on], y[on], index[keep])

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_progress()
        if self._evaluation is not None:
            self._finish(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._now = self.engine
        self._start(TEST_STAGE, trainer.test_dataloaders)
        subset = getattr(trainer.datamodule, "test_set", None)
        if isinstance(subset, SubsetImages):  # eval.test_subset: record the images' places in the whole split
            self._subset = subset
            self._order = subset.split_index if self._order is None else subset.split_index[self._order]
        self._start_progress(trainer)
        if self.certifier is not None:
            images = len(getattr(trainer.test_dataloaders, "dataset", ()))
            info_line(
                f"certification: {self.certifier.describe()} on {images} test images, "
                f"at most {self.certifier.passes_per_image():,} forward passes an image, "
                f"{images * self.certifier.passes_per_image():,} in all"
            )

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x, y = batch
        self._accumulate(trainer, pl_module, x, y, self._split_index(len(y)))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_progress()
        self._finish(trainer, pl_module, "test")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._close_progress()

    def results(self) -> dict[str, Any]:
        """Merged into results.json by the entry points."""
        return dict(self._results)

    # -- accumulation ----------------------------------------------------------------------------------
    def _active_val(self, trainer: pl.Trainer) -> bool:
        if trainer.sanity_checking or self.val_subset == 0:
            return False
        last = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
        return last or (trainer.current_epoch + 1) % self.val_every_n_epochs == 0

    def spawn_state(self) -> dict[str, Any]:
        """What a spawned DDP process hands back to the main one (`lightning/distributed.carry_back`)."""
        return {"results": self._results, "records": self.records}

    def load_spawn_state(self, state: dict[str, Any]) -> None:
        self._results, self.records = state["results"], state["records"]

    def _split_index(self, n: int) -> Tensor:
        """The split index (on the host) of the next `n` images this process evaluates."""
        start, self._seen = self._seen, self._seen + n
        return self._order[start : start + n] if self._order is not None else torch.arange(start, start + n)

    def _start(self, stage: int, loader: object = None) -> None:
        """A fresh evaluation: the engine's attacks draw from generators of their own, seeded from the run's seed
        and `stage` (the epoch, or `TEST_STAGE`), so which attacks run cannot change the training run and each
        evaluation repeats exactly. `loader`'s sampler says which images of the split this process sees (its
        shard under DDP)."""
        self._order = sample_order(loader)
        seed = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))  # seed_everything's
        self._evaluation = self._now.start(stage, seed)
        self._seen = 0
        self._subset = None

    def _stop(self) -> None:
        self._evaluation = None

    def _start_progress(self, trainer: pl.Trainer, stage: str = "test") -> None:
        """The evaluation's progress, on rank 0 only: for the test split a bar below Lightning's when the run shows
        progress bars (`trainer.enable_progress_bar`), else a plain line at most once a minute
        (`robustness/progress.py`); for the validation probe (under Lightning's validation bar, which stands still
        while a batch is attacked) plain lines only, so a probe that runs over a minute says what it does."""
        self._close_progress()
        if not trainer.is_global_zero or self._evaluation is None:
            return
        loader = trainer.test_dataloaders if stage == "test" else trainer.val_dataloaders
        loader = loader[0] if isinstance(loader, (list, tuple)) and loader else loader
        images = len(self._order) if self._order is not None else len(getattr(loader, "dataset", ()))
        if stage == "val":
            images = min(images, self.val_subset)
        engine = self._now
        levels = {name: attack_levels(attack, engine.levels) for name, attack in engine.attacks.items()}
        bar = stage == "test" and trainer.progress_bar_callback is not None
        self._progress = EvaluationProgress(images, engine.attacks, levels, stage, bar=bar, steps=engine.steps())
        self._evaluation.progress = self._progress

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _accumulate(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, x: Tensor, y: Tensor, index: Tensor
    ) -> None:
        """Attack one batch; its per-image outcomes stay on the device (no read-back until the epoch end).

        The attacks run in the trainer's precision context, as `test_step` does: under `bf16-mixed` the model
        is attacked and judged in the precision it is evaluated in (and twice as fast on a GPU); the
        perturbations themselves stay in the images' float32.
        """
        net = getattr(pl_module, "net", pl_module)
        with trainer.precision_plugin.forward_context():
            self._evaluation.add(net, x, y, index)  # `index`: the images' places in the split, on the host

    def _collect(self, trainer: pl.Trainer) -> Records:
        """This process's records, moved to the host once, merged with the other processes' (each image once)."""
        evaluation, self._evaluation = self._evaluation, None
        records = evaluation.records()
        if self._subset is not None:  # eval.test_subset: the images' places are in the whole split
            records.split_size, records.subset_seed = self._subset.split_size, self._subset.seed
        parts = gather_objects(trainer, records)
        return parts[0] if len(parts) == 1 else merge(parts)

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        records = self._collect(trainer)
        self.records[stage] = records
        summary = self._now.summarize(records)
        for key, value in scalars(summary, stage).items():
            pl_module.log(key, value, sync_dist=False)
        self._results.setdefault("robustness", {})[stage] = summary
        if stage == "val" and records.n:
            pl_module.log(ROBUST, robust_accuracy(records), sync_dist=False)  # what monitor=auto selects on
        if "certified" in summary:
            certified = summary["certified"]
            for key, acc in certified["acc"].items():
                pl_module.log(f"test/certified/{key}/acc", acc, sync_dist=False)
            pl_module.log("test/certified/clean_acc", certified["smoothed_clean_acc"], sync_dist=False)
        if stage == "test":
            self._results["honesty"] = {"warnings": summary["honesty"]}
            for w in summary["honesty"]:
                rank_zero_warn(f"honesty check: {w['message']}")
            where = self.results_dir or trainer.default_root_dir
            if self.save_records and trainer.global_rank == 0 and where:
                path = records.save(Path(where) / RECORDS_FILE.format(stage=stage))
                summary["records"] = path.name
                if self.log_figure:  # the same figure as TensorBoard's, as a file beside results.json
                    save_figure(accuracy_vs_snr_figure(summary), Path(where) / FIGURE_FILE)
        if self.log_figure:
            self._log_figure(trainer, stage, summary)

    def _log_figure(self, trainer: pl.Trainer, stage: str, summary: dict[str, Any]) -> None:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or trainer.global_rank != 0:
            return
        fig = accuracy_vs_snr_figure(summary)
        for lg in loggers:
            lg.experiment.add_figure(f"{stage}/robustness_vs_snr", fig, global_step=trainer.global_step)


def robust_accuracy(records: Records) -> float:
    """The validation probe's robust accuracy, one number to choose checkpoints on: the share of its images that are
    correct clean and survive every attack at its strongest level (the lowest SNR; fixed budgets count as such)."""
    worst = records.worst()
    snr = [lv for lv in worst if lv is not None]
    level = None if None in worst else min(snr)
    return worst[level]
