"""`RobustnessVsSNR`: accuracy clean and under each attack x SNR level, during validation and test.

Attacks run on the batches Lightning already moved to the device (in `on_*_batch_end`), so the
evaluation is batched and costs no second pass over the data. Per-image outcomes stay on the device
until the epoch ends, are gathered across processes once, and become `Records`
(`adv_smooth/robustness/records.py`): every number of the summary, the `worst` cascade, the minimal-SNR
curve and the honesty checks are computed from them, and the test split's records are saved beside
results.json (`per_image_test.npz`) so reports can pair runs image by image. At validation only the
first `val_subset` images of the (unshuffled) validation split are attacked, every
`val_every_n_epochs` epochs; at test the whole split is.

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
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from adv_smooth.attacks.base import Attack
from adv_smooth.robustness.batch import attack_levels, evaluate_batch, weak_to_strong
from adv_smooth.robustness.curves import accuracy_vs_snr_figure, save_figure, scalars, summarize
from adv_smooth.robustness.records import AttackRecords, Records
from adv_smooth.utils.errors import UserError, require

RECORDS_FILE = "per_image_{stage}.npz"
FIGURE_FILE = "robustness_test.png"


def build_attacks(attacks: Mapping[str, Any] | None) -> dict[str, Attack]:
    """`{label: Attack}` from built attacks or `_target_` configs; a `UserError` names a bad entry."""
    if attacks is None:
        from adv_smooth.attacks.fgsm import FGSM
        from adv_smooth.attacks.pgd import PGD

        return {"fgsm": FGSM(), "pgd": PGD(include_fgsm=False)}
    require(isinstance(attacks, Mapping), "eval.attacks", attacks, "a mapping from a label to an attack config")
    built: dict[str, Attack] = {}
    for label, attack in attacks.items():
        if isinstance(attack, Mapping) and "_target_" in attack:
            attack = _instantiate(f"eval.attacks.{label}", attack)
        if not isinstance(attack, Attack):
            raise UserError(
                f"eval.attacks.{label}={attack!r} is invalid: expected an attack config with a _target_ "
                "(one of conf/attack/*.yaml, e.g. +attack@eval.attacks.{label}=apgd)"
            )
        built[str(label)] = attack
    return built


def _instantiate(key: str, config: Mapping[str, Any]) -> Any:
    """Build one attack; its own one-line `UserError` (or an unknown option) is reported under `key`."""
    import hydra
    from hydra.errors import InstantiationException
    from hydra.utils import get_object

    target = config["_target_"]
    try:
        cls = get_object(str(target))  # imports the module; calls nothing
    except Exception as e:
        raise UserError(f"{key}: cannot build {target}: {str(e).splitlines()[0]}") from None
    if not (isinstance(cls, type) and issubclass(cls, Attack)):  # never call what a config merely names
        raise UserError(
            f"{key}._target_={target!r} is invalid: expected an attack class (a subclass of "
            "adv_smooth.attacks.base.Attack, e.g. one named in conf/attack/*.yaml)"
        )
    try:
        return hydra.utils.instantiate(dict(config), _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__ or e
        while cause.__cause__ is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise UserError(f"{key}.{cause}") from None
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            option = str(cause).rsplit("argument", 1)[-1].strip(" '")
            raise UserError(f"{key}.{option} is not an option of {config['_target_']}") from None
        message = str(cause).splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise UserError(f"{key}: cannot build {config['_target_']}: {message}") from None


def from_eval_config(eval_cfg: Mapping[str, Any], **overrides: Any) -> RobustnessVsSNR:
    """The callback for an `eval` config group (conf/eval/*.yaml), e.g. for checkpoint evaluation."""
    keys = ("snr_levels", "val_subset", "val_every_n_epochs", "cascade", "worst", "sanity_snr_db")
    options = {k: eval_cfg[k] for k in keys if k in eval_cfg}
    return RobustnessVsSNR(attacks=eval_cfg.get("attacks"), **{**options, **overrides})


def check_levels(snr_levels: Any) -> list[float]:
    """The SNR levels as floats: a non-empty list of finite numbers > 0 (dB)."""
    ok = isinstance(snr_levels, Sequence) and not isinstance(snr_levels, str) and len(snr_levels) > 0
    ok = ok and all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0 for s in snr_levels
    )
    shown = list(snr_levels) if isinstance(snr_levels, Sequence) and not isinstance(snr_levels, str) else snr_levels
    require(ok, "eval.snr_levels", shown, "a non-empty list of finite SNRs in dB, each > 0, e.g. [50,45,40,33]")
    return [float(s) for s in snr_levels]


class RobustnessVsSNR(pl.Callback):
    """Robust accuracy vs SNR for each configured attack (`attacks: {label: attack}`), with per-image records.

    Args:
        attacks: label -> `Attack` (or its `_target_` config); default FGSM and 10-step PGD in L-inf.
        snr_levels: the SNR budgets in dB.
        val_subset / val_every_n_epochs: the validation-time evaluation (0 images: none).
        cascade: AutoAttack's cascade (each attack runs only on the images still robust; the `worst`
            verdict is unchanged, the per-attack accuracies become "robust after this attack").
        worst: report the per-image worst case over every SNR-budget attack.
        sanity_snr_db: also attack the test split at this very low SNR (accuracy should approach 0);
            None: off.
        save_records: write the test split's per-image records beside results.json.
    """

    def __init__(
        self,
        attacks: Mapping[str, Any] | None = None,
        snr_levels: Sequence[float] = (50, 45, 40, 33),
        val_subset: int = 512,
        val_every_n_epochs: int = 1,
        log_figure: bool = True,
        cascade: bool = False,
        worst: bool = True,
        sanity_snr_db: float | None = None,
        save_records: bool = True,
        seed: int | None = None,
    ) -> None:
        levels = check_levels(snr_levels)
        require(
            isinstance(val_subset, int) and not isinstance(val_subset, bool) and val_subset >= 0,
            "eval.val_subset",
            val_subset,
            "an integer >= 0",
        )
        require(
            isinstance(val_every_n_epochs, int) and val_every_n_epochs >= 1,
            "eval.val_every_n_epochs",
            val_every_n_epochs,
            "an integer >= 1",
        )
        require(
            sanity_snr_db is None or (isinstance(sanity_snr_db, (int, float)) and math.isfinite(sanity_snr_db)),
            "eval.sanity_snr_db",
            sanity_snr_db,
            "null or a finite SNR in dB (e.g. 0)",
        )
        self.attacks = build_attacks(attacks)
        require(len(self.attacks) > 0, "eval.attacks", {}, "at least one attack")
        self.levels = weak_to_strong(levels)
        self.val_subset = val_subset
        self.val_every_n_epochs = val_every_n_epochs
        self.log_figure = log_figure
        self.cascade = bool(cascade)
        self.worst = bool(worst)
        self.sanity_snr_db = None if sanity_snr_db is None else float(sanity_snr_db)
        self.save_records = bool(save_records)
        require(
            seed is None or (isinstance(seed, int) and not isinstance(seed, bool)),
            "seed",
            seed,
            "null (the run's seed) or an integer",
        )
        self.seed = seed
        self._own_rng = [name for name, attack in self.attacks.items() if attack.generator is None]
        self._stage_seed: int | None = None
        self._batches: list[dict[str, Any]] | None = None
        self._seen = 0
        self._results: dict[str, Any] = {}
        self.records: dict[str, Records] = {}

    # -- Lightning hooks -------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(trainer.current_epoch) if self._active_val(trainer) else self._stop()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._batches is not None:
            x, y = batch
            keep = max(0, min(len(y), self.val_subset - self._seen))
            if keep:
                self._accumulate(trainer, pl_module, x[:keep], y[:keep], None)
            self._seen += len(y)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._batches is not None:
            self._finish(trainer, pl_module, "val")

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(-1)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x, y = batch
        self._accumulate(trainer, pl_module, x, y, self.sanity_snr_db)
        self._seen += len(y)

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

    def _start(self, epoch: int) -> None:
        """A fresh evaluation; the attacks' random draws restart from (seed, epoch) (see `_seed_attacks`)."""
        seed = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))  # seed_everything's
        self._stage_seed = seed * 100_003 + epoch
        self._batches = []
        self._seen = 0

    def _stop(self) -> None:
        self._batches = None

    def _accumulate(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, x: Tensor, y: Tensor, sanity: float | None
    ) -> None:
        """Attack one batch; keep its per-image outcomes on the device (no read-back until the epoch end).

        The attacks run in the trainer's precision context, as `test_step` does: under `bf16-mixed` the model
        is attacked and judged in the precision it is evaluated in (and twice as fast on a GPU); the
        perturbations themselves stay in the images' float32.
        """
        net = getattr(pl_module, "net", pl_module)
        self._seed_attacks(x.device)
        with trainer.precision_plugin.forward_context():
            out = evaluate_batch(net, x, y, self.attacks, self.levels, self.cascade, sanity)
        out["label"] = y
        out["index"] = torch.arange(self._seen, self._seen + len(y), device=y.device)
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
        self._stage_seed = None

    def _collect(self, pl_module: pl.LightningModule) -> Records:
        """Concatenate the batches, gather them across processes, move them to the host once."""
        batches, self._batches = self._batches or [], None

        def cat(get) -> np.ndarray:
            local = torch.cat([get(b) for b in batches], dim=-1)
            gathered = pl_module.all_gather(local) if pl_module.trainer.world_size > 1 else local
            if pl_module.trainer.world_size > 1:  # (world, ..., n) -> (..., world * n)
                gathered = gathered.movedim(0, -2).flatten(-2)
            return gathered.cpu().numpy()

        if not batches:
            empty = np.zeros(0, dtype=np.int64)
            return Records(empty, empty, empty, cascade=self.cascade)
        records = Records(
            index=cat(lambda b: b["index"]),
            label=cat(lambda b: b["label"]),
            clean_pred=cat(lambda b: b["clean_pred"]),
            zero_grad=cat(lambda b: b["zero_grad"]),
            cascade=self.cascade,
        )
        for name, attack in self.attacks.items():
            has_min = batches[0]["attacks"][name]["min_snr_db"] is not None
            records.attacks[name] = AttackRecords(
                levels=attack_levels(attack, self.levels),
                adv_correct=cat(lambda b, n=name: b["attacks"][n]["adv_correct"]),
                measured_snr_db=cat(lambda b, n=name: b["attacks"][n]["measured_snr_db"].float()),
                min_snr_db=cat(lambda b, n=name: b["attacks"][n]["min_snr_db"].float()) if has_min else None,
            )
        for name in batches[0]["sanity_correct"]:
            records.sanity_level = self.sanity_snr_db
            records.sanity_correct[name] = cat(lambda b, n=name: b["sanity_correct"][n])
        return records

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        records = self._collect(pl_module)
        self.records[stage] = records
        summary = summarize(records, self.attacks, self.levels, self.worst)
        for key, value in scalars(summary, stage).items():
            pl_module.log(key, value, sync_dist=False)
        self._results.setdefault("robustness", {})[stage] = summary
        if stage == "test":
            self._results["honesty"] = {"warnings": summary["honesty"]}
            for w in summary["honesty"]:
                rank_zero_warn(f"honesty check: {w['message']}")
            if self.save_records and trainer.global_rank == 0 and trainer.default_root_dir:
                path = records.save(Path(trainer.default_root_dir) / RECORDS_FILE.format(stage=stage))
                summary["records"] = path.name
                if self.log_figure:  # the same figure as TensorBoard's, as a file beside results.json
                    save_figure(accuracy_vs_snr_figure(summary), Path(trainer.default_root_dir) / FIGURE_FILE)
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
