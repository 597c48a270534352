"""`python -m adv_smooth.evaluate ckpt=PATH [overrides]`: robustness of a saved checkpoint.

No retraining: the configuration of the run that wrote the checkpoint (its `.hydra/config.yaml`)
rebuilds the same network and test split; the command line's overrides (attacks, SNR levels, data
root, device) are applied on top. Weights load with the weights-only unpickler. Results go to this
evaluation's own run dir as results.json. A list of checkpoints is one ensemble, evaluated beside each of
its members, and `weights=FILE model=...` evaluates a network that is not one of our checkpoints: what is
evaluated, and everything that tests it, is built in one pass by `app/evaluation_target.py`; this module
runs what it is given and writes the results.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from adv_smooth.app import result_set
from adv_smooth.app.evaluation_target import build_evaluation
from adv_smooth.app.provenance import provenance
from adv_smooth.app.results import evaluation_results
from adv_smooth.app.run_dir import refuse_completed
from adv_smooth.app.summary import ensemble_summary, format_summary, written_to
from adv_smooth.run_record import RunRecord
from adv_smooth.utils.ranks import launched_rank_zero


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """One evaluation job: built whole (`build_evaluation`), then run into a staging dir whose result set replaces
    an earlier evaluation's only once it is complete."""
    from hydra.core.hydra_config import HydraConfig

    start = time.time()
    out = Path(cfg.trainer.default_root_dir)
    refuse_completed(out, resuming=False, overwrite=cfg.get("overwrite") is True)
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    evaluation = build_evaluation(cfg, overrides, result_set.staging_dir(out))
    if launched_rank_zero():  # an empty staging dir, once nothing more can be refused
        result_set.prepare(out)
    for tester in (evaluation.tester, *(tester for _, tester in evaluation.members)):  # an ensemble's members too
        tester.trainer.test(tester.module, datamodule=evaluation.datamodule, verbose=False)
    trainer = evaluation.tester.trainer  # its callbacks wrote the whole result set, moved in at the end
    info = dict(evaluation.info)
    fingerprints = info.pop("split_fingerprints", None)
    members = [(path, tester.trainer) for path, tester in evaluation.members]  # an ensemble's, in members/<i>/
    fields, member_records = evaluation_results(trainer, info, members)
    record = RunRecord(
        status="completed",
        task="evaluate",
        seed=evaluation.run_cfg.seed,
        choices=evaluation.choices,
        wall_time_s=round(time.time() - start, 2),
        provenance=provenance(fingerprints=fingerprints),  # the code and libraries that made these numbers
        **fields,
        config=OmegaConf.to_container(evaluation.run_cfg, resolve=True),
    )
    if evaluation.members:  # an ensemble: each member's results, written in members/<i>/
        record.members = member_records
    if not trainer.is_global_zero:  # another DDP process (`ddp` re-runs this command): rank 0 writes the results
        return record.to_dict()
    results = result_set.commit(out, record).to_dict()  # replaces an earlier evaluation's set only now, whole
    print(format_summary(results))
    if evaluation.members:
        print(ensemble_summary(results))
    print(written_to(out))
    return results
