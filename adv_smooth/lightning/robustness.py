"""`RobustnessVsSNR`: accuracy clean and under each attack x SNR level, during validation and test.

Attacks run on the batches Lightning already moved to the device (in `on_*_batch_end`), so the
evaluation is batched and costs no second pass over the data. Per-image outcomes stay on the device
until the epoch ends, are gathered across processes once (under DDP each process evaluates its own unpadded
shard, `data/sharding.py`, and the shards merge by split index, each image once), and become `Records`
(`adv_smooth/robustness/records.py`): every number of the summary, the `worst` cascade, the minimal-SNR
curve and the honesty checks are computed from them, and the test split's records are saved beside
results.json (`per_image_test.npz`) so reports can pair runs image by image. At validation only the
first `val_subset` images of the (unshuffled) validation split are attacked, every
`val_every_n_epochs` epochs, by default with one cheap attack at one level, sized to a budget relative to
training (`lightning/validation_plan.py`, `robustness/budget_plan.py`); at test the whole split is (or the
`eval.test_subset` that `lightning/test_subset.py` chose), with every attack at every level.

Attacks come built (Hydra instantiates `eval.attacks.<label>` from `conf/attack/*.yaml`); a plain
mapping with a `_target_` is instantiated here, so the callback can also be made by hand.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from adv_smooth.attacks.base import Attack
from adv_smooth.data.sharding import sample_order
from adv_smooth.lightning.distributed import gather_objects
from adv_smooth.lightning.test_subset import SubsetImages
from adv_smooth.lightning.validation_plan import plan_for, validation_request
from adv_smooth.robustness.attack_configs import build_attacks, check_levels
from adv_smooth.robustness.batch import attack_levels, evaluate_batch, weak_to_strong
from adv_smooth.robustness.certify import build_certifier, certificate_arrays, summarize_certified
from adv_smooth.robustness.curves import accuracy_vs_snr_figure, save_figure, scalars, summarize
from adv_smooth.robustness.records import AttackRecords, Records, merge
from adv_smooth.utils.errors import require

RECORDS_FILE = "per_image_{stage}.npz"
FIGURE_FILE = "robustness_test.png"


def from_eval_config(eval_cfg: Mapping[str, Any], **overrides: Any) -> RobustnessVsSNR:
    """The callback for an `eval` config group (conf/eval/*.yaml), e.g. for checkpoint evaluation."""
    keys = ("snr_levels", "val_subset", "val_every_n_epochs", "val_attacks", "val_snr_levels", "val_budget")
    keys += ("cascade", "worst", "sanity_snr_db", "certify")
    options = {k: eval_cfg[k] for k in keys if k in eval_cfg}
    return RobustnessVsSNR(attacks=eval_cfg.get("attacks"), **{**options, **overrides})


class RobustnessVsSNR(pl.Callback):
    """Robust accuracy vs SNR for each configured attack (`attacks: {label: attack}`), with per-image records.

    Args:
        attacks: label -> `Attack` (or its `_target_` config); default FGSM and 10-step PGD in L-inf.
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
    """

    def __init__(
        self,
        attacks: Mapping[str, Any] | None = None,
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
    ) -> None:
        levels = check_levels(snr_levels)
        require(
            sanity_snr_db is None or (isinstance(sanity_snr_db, (int, float)) and math.isfinite(sanity_snr_db)),
            "eval.sanity_snr_db",
            sanity_snr_db,
            "null or a finite SNR in dB (e.g. 0)",
        )
        self.attacks = build_attacks(attacks)
        require(len(self.attacks) > 0, "eval.attacks", {}, "at least one attack")
        self.levels = weak_to_strong(levels)
        self.val_request = validation_request(
            self.attacks, self.levels, val_subset, val_every_n_epochs, val_attacks, val_snr_levels, val_budget
        )
        self.val_plan = None  # planned at the first validation, when the trainer knows its loaders
        self.val_subset, self.val_every_n_epochs = val_subset, val_every_n_epochs  # the plan's once planned
        self._now: tuple[dict[str, Attack], list[float]] = (self.attacks, self.levels)  # this stage's
        self.log_figure = log_figure
        self.cascade = bool(cascade)
        self.worst = bool(worst)
        self.sanity_snr_db = None if sanity_snr_db is None else float(sanity_snr_db)
        self.save_records = bool(save_records)
        self.results_dir: str | None = None  # where records and figure go (the task's staging dir); None: the run dir
        require(
            seed is None or (isinstance(seed, int) and not isinstance(seed, bool)),
            "seed",
            seed,
            "null (the run's seed) or an integer",
        )
        self.seed = seed
        self._own_rng = [name for name, attack in self.attacks.items() if attack.generator is None]
        self.certifier = build_certifier(certify)
        self._certifier_own_rng = self.certifier is not None and self.certifier.generator is None
        self._stage_seed: int | None = None
        self._batches: list[dict[str, Any]] | None = None
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
            self._val = (attacks, levels)
        self._now = self._val
        self._start(trainer.current_epoch, trainer.val_dataloaders) if self._active_val(trainer) else self._stop()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._batches is not None:
            x, y = batch
            index = self._split_index(len(y))
            keep = torch.nonzero(index < self.val_subset).flatten()  # the split's first images, on any process
            if len(keep) == len(y):
                self._accumulate(trainer, pl_module, x, y, None, index)
            elif len(keep):
                on = keep.to(y.device)
                self._accumulate(trainer, pl_module, x[on], y[on], None, index[keep])

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._batches is not None:
            self._finish(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._now = (self.attacks, self.levels)
        self._start(-1, trainer.test_dataloaders)
        subset = getattr(trainer.datamodule, "test_set", None)
        if isinstance(subset, SubsetImages):  # eval.test_subset: record the images' places in the whole split
            self._subset = subset
            self._order = subset.split_index if self._order is None else subset.split_index[self._order]
        if self.certifier is not None:
            images = len(getattr(trainer.test_dataloaders, "dataset", ()))
            rank_zero_info(
                f"certification: {self.certifier.describe()} on {images} test images, "
                f"{self.certifier.passes_per_image():,} forward passes an image, "
                f"{images * self.certifier.passes_per_image():,} in all"
            )

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x, y = batch
        self._accumulate(trainer, pl_module, x, y, self.sanity_snr_db, self._split_index(len(y)))
        if self.certifier is not None:
            with trainer.precision_plugin.forward_context():
                cert = self.certifier.certify(getattr(pl_module, "net", pl_module), x)
            self._batches[-1]["certified"] = certificate_arrays(cert)

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

    def spawn_state(self) -> dict[str, Any]:
        """What a spawned DDP process hands back to the main one (`lightning/distributed.carry_back`)."""
        return {"results": self._results, "records": self.records}

    def load_spawn_state(self, state: dict[str, Any]) -> None:
        self._results, self.records = state["results"], state["records"]

    def _split_index(self, n: int) -> Tensor:
        """The split index (on the host) of the next `n` images this process evaluates."""
        start, self._seen = self._seen, self._seen + n
        return self._order[start : start + n] if self._order is not None else torch.arange(start, start + n)

    def _start(self, epoch: int, loader: object = None) -> None:
        """A fresh evaluation; the attacks' random draws restart from (seed, epoch) (see `_seed_attacks`).

        `loader`'s sampler says which images of the split this process sees (its shard under DDP).
        """
        self._order = sample_order(loader)
        seed = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))  # seed_everything's
        self._stage_seed = seed * 100_003 + epoch
        self._batches = []
        self._seen = 0
        self._subset = None

    def _stop(self) -> None:
        self._batches = None

    def _accumulate(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        x: Tensor,
        y: Tensor,
        sanity: float | None,
        index: Tensor,
    ) -> None:
        """Attack one batch; keep its per-image outcomes on the device (no read-back until the epoch end).

        The attacks run in the trainer's precision context, as `test_step` does: under `bf16-mixed` the model
        is attacked and judged in the precision it is evaluated in (and twice as fast on a GPU); the
        perturbations themselves stay in the images' float32.
        """
        net = getattr(pl_module, "net", pl_module)
        self._seed_attacks(x.device)
        with trainer.precision_plugin.forward_context():
            out = evaluate_batch(net, x, y, *self._now, self.cascade, sanity)
        out["label"] = y
        out["index"] = index  # the images' places in the split, kept on the host
        self._batches.append(out)

    def _seed_attacks(self, device: torch.device) -> None:
        """Give the attacks without a generator their own, seeded per evaluation, on the images' device.

        Their random starts and queries then never draw from the global generators that shuffle and augment
        the training data: which attacks validation runs cannot change the training run, each evaluation
        repeats exactly (a resumed run's too), and the test numbers do not depend on the epochs before.
        """
        if self._stage_seed is None:
            return
        for i, name in enumerate(self._own_rng):
            self.attacks[name].generator = torch.Generator(device=device).manual_seed(self._stage_seed * 97 + i)
        if self._certifier_own_rng:  # after every attack's stream, so adding it changes no attack's draws
            seed = self._stage_seed * 97 + len(self._own_rng)
            self.certifier.generator = torch.Generator(device=device).manual_seed(seed)
        self._stage_seed = None

    def _collect(self, trainer: pl.Trainer) -> Records:
        """This process's records, moved to the host once, merged with the other processes' (each image once)."""
        parts = gather_objects(trainer, self._local_records())
        return parts[0] if len(parts) == 1 else merge(parts)

    def _local_records(self) -> Records:
        batches, self._batches = self._batches or [], None

        def cat(get) -> np.ndarray:
            return torch.cat([get(b) for b in batches], dim=-1).cpu().numpy()

        subset = self._subset
        split = {"split_size": subset.split_size, "subset_seed": subset.seed} if subset is not None else {}
        if not batches:
            empty = np.zeros(0, dtype=np.int64)
            return Records(empty, empty, empty, cascade=self.cascade, **split)
        records = Records(
            index=cat(lambda b: b["index"]),
            label=cat(lambda b: b["label"]),
            clean_pred=cat(lambda b: b["clean_pred"]),
            zero_grad=cat(lambda b: b["zero_grad"]),
            cascade=self.cascade,
            **split,
        )
        attacks, levels = self._now
        for name, attack in attacks.items():
            has_min = batches[0]["attacks"][name]["min_snr_db"] is not None
            records.attacks[name] = AttackRecords(
                levels=attack_levels(attack, levels),
                adv_correct=cat(lambda b, n=name: b["attacks"][n]["adv_correct"]),
                measured_snr_db=cat(lambda b, n=name: b["attacks"][n]["measured_snr_db"].float()),
                min_snr_db=cat(lambda b, n=name: b["attacks"][n]["min_snr_db"].float()) if has_min else None,
            )
        for name in batches[0]["sanity_correct"]:
            records.sanity_level = self.sanity_snr_db
            records.sanity_correct[name] = cat(lambda b, n=name: b["sanity_correct"][n])
        for key in batches[0].get("certified", {}):
            records.certified[key] = np.concatenate([b["certified"][key] for b in batches])
        return records

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        records = self._collect(trainer)
        self.records[stage] = records
        summary = summarize(records, *self._now, self.worst)
        for key, value in scalars(summary, stage).items():
            pl_module.log(key, value, sync_dist=False)
        self._results.setdefault("robustness", {})[stage] = summary
        if stage == "test" and self.certifier is not None and records.certified:
            certified = summarize_certified(records.label, records.certified, self._now[1], self.certifier)
            summary["certified"] = certified
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
