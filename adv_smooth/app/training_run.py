"""Training task: what one Hydra job does. Thin: building lives in `build`, checks in `preflight.checks`."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException

from adv_smooth.app import result_set
from adv_smooth.app.build import build_datamodule, build_defense, build_list, build_module, build_trainer, load_data
from adv_smooth.app.choices import hydra_choices
from adv_smooth.app.console import hold_info
from adv_smooth.app.hparams import final_metrics, log_hparams, run_hparams
from adv_smooth.app.preflight.checks import check_config
from adv_smooth.app.preflight.sweeps import check_sweep
from adv_smooth.app.provenance import provenance
from adv_smooth.app.results import best_val_acc, callback_results, scalar_metrics, selection
from adv_smooth.app.run_dir import refuse_completed
from adv_smooth.app.search import optimized
from adv_smooth.app.summary import format_summary, written_to
from adv_smooth.lightning.checkpointing import AtomicCheckpointIO
from adv_smooth.lightning.fit_record import FitRecord
from adv_smooth.lightning.preemption import Preempted
from adv_smooth.lightning.schedules import unreached_milestones
from adv_smooth.run_record import RunRecord, fields_of
from adv_smooth.utils.checkpoints import check_state_matches, load_checkpoint
from adv_smooth.utils.errors import require
from adv_smooth.utils.ranks import launched_rank_zero


def run_dir(cfg: DictConfig) -> Path:
    return Path(cfg.trainer.default_root_dir)


def resolve_resume(resume: str | None, directory: Path) -> str | None:
    """The checkpoint `resume` names; `last` means this run dir's last one (missing = start fresh, so reruns are
    idempotent)."""
    if resume in (None, "", "null"):
        return None
    if resume == "last":
        last = directory / "checkpoints" / "last.ckpt"
        if not last.exists():  # said, not silent: a mistyped hydra.run.dir would otherwise retrain quietly
            print(f"note: resume=last: no checkpoint at {last}, training from scratch", file=sys.stderr)
            return None
        return str(last)
    return str(resume)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then test the best-on-validation weights; write results.json atomically. Returns it.

    Everything a user can get wrong (values, the resume checkpoint, defense settings) is checked
    before the data is loaded. The result files (records, figure, results.json) are written into the
    run dir's staging dir and moved in as a set at the very end (`app/result_set.py`), so a killed or
    failed run never leaves results that look complete, nor replaces or mixes with a completed run's. A
    completed run's dir is only reused to resume it (`resume`) or with `overwrite=true`.
    """
    check_config(cfg)
    check_sweep(cfg)
    stepped = cfg.optim.get("schedule", "step") == "step"  # a cosine run places no milestone
    late = unreached_milestones(cfg.optim.get("milestones") or [], cfg.trainer.max_epochs) if stepped else None
    if late and launched_rank_zero():  # legal, but a drop after the last epoch is surely not what was meant
        print(late, file=sys.stderr)
    out = run_dir(cfg)
    overwrite = cfg.get("overwrite", False)
    require(isinstance(overwrite, bool), "overwrite", overwrite, "true or false")
    refuse_completed(out, resuming=cfg.get("resume") not in (None, "", "null"), overwrite=overwrite)
    start = time.time()
    staged = result_set.stages_checkpoints(out, cfg.get("resume"), overwrite)  # replacing a completed run
    ckpt_path = resolve_resume(cfg.get("resume"), result_set.staging_dir(out) if staged else out)
    resume = load_checkpoint(ckpt_path) if ckpt_path else None  # refuses pickled code before Lightning reads it
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    defense = build_defense(cfg.defense)
    datamodule = build_datamodule(cfg, load=False)  # its constructor checks dataset.*; no file is read yet
    callbacks = build_list(cfg.get("callbacks"))  # before the data too: their constructors check their settings
    if staged:  # its checkpoints move in with its results, once it completes
        result_set.redirect_checkpoints(callbacks, out)
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a progress bar it was told not to show
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    record = FitRecord(start)  # the earlier parts' wall time and fit metrics, through the checkpoint resumed from
    held = hold_info()  # Lightning's notes on the Trainer: shown as training starts, not before an error in between
    trainer = build_trainer(  # before the data: Lightning refuses bad settings in seconds, not after a download
        cfg.trainer,
        callbacks=[*callbacks, record],
        logger=build_list(cfg.get("logger")) or False,
        plugins=[AtomicCheckpointIO()],  # checkpoints appear whole under their final name, or not at all
    )
    hparams = run_hparams(cfg, hydra_choices())
    log_hparams(trainer.loggers, hparams)  # Lightning writes them to hparams.yaml as the fit starts
    load_data(datamodule)
    module = build_module(cfg, datamodule, defense, trainer)  # perf `auto`: the trainer's device and steps
    if resume is not None:
        check_state_matches(resume, module, ckpt_path)
        del resume
    held.release()
    staging = result_set.staging_dir(out)
    for callback in trainer.callbacks:  # the robustness records and figure: staged with results.json
        if hasattr(callback, "results_dir"):
            callback.results_dir = str(staging)
    if launched_rank_zero():
        result_set.prepare(out, keep_checkpoints=staged and ckpt_path is not None)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        fit_metrics = scalar_metrics(trainer)
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        test_metrics: dict[str, Any] = {}
        tested = best if cfg.get("eval", {}).get("checkpoint", "best") == "best" else ""  # last: final weights
        if cfg.get("test", True):
            trainer.test(module, datamodule=datamodule, ckpt_path=tested or None, weights_only=True, verbose=False)
            test_metrics = scalar_metrics(trainer)
    except SIGTERMException:  # Lightning's own handler fired (outside the Preemption callback's window)
        raise Preempted(signal.SIGTERM, None, trainer.current_epoch, trainer.global_step) from None

    run = RunRecord(
        status="completed",
        seed=cfg.seed,
        choices=hydra_choices(),
        best_checkpoint=best,
        best_epoch=getattr(trainer.checkpoint_callback, "saved_epochs", {}).get(best),  # 0-based, as Lightning
        tested_checkpoint=tested,  # "" = the final weights
        epochs=trainer.current_epoch,
        wall_time_s=round(record.wall_time_s(), 2),  # every part of a resumed run
        wall_time_parts_s=[round(s, 2) for s in record.parts_s()],
        best_val_acc=best_val_acc(trainer),
        **selection(trainer),
        fit=record.fit_metrics(fit_metrics),
        metrics=test_metrics,
        provenance=provenance(datamodule),
        **fields_of(callback_results(trainer)),
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    run.optimized = optimized({"fit": run.fit}, cfg)
    if not trainer.is_global_zero:  # another DDP process (`ddp` re-runs this command): rank 0 writes the results
        return run.to_dict()
    log_hparams(trainer.loggers, hparams, final_metrics(run.to_dict()), trainer.global_step)
    results = result_set.commit(out, run).to_dict()  # with the paths where the files now are
    print(format_summary(results))
    print(written_to(out))
    return results
