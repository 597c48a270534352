"""`report --transfer`: the sweep's networks loaded from their checkpoints, then `reporting/transfer.py`'s matrix.

Every completed job must share the dataset and its test split (results.json's `split_fingerprints`); each network
is rebuilt from its own resolved config and loaded with the weights it tested (`tested_checkpoint`, else
`checkpoints/last.ckpt`), weights-only, by the loader checkpoint evaluation uses (`app/saved_network.py`). The
attack is PGD at one SNR level on the first `images` test images.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from adv_smooth.app.build import build_datamodule
from adv_smooth.app.preflight.failures import keyed
from adv_smooth.app.saved_network import load_network
from adv_smooth.attacks.pgd import PGD
from adv_smooth.reporting.jobs import COMPLETED, Job
from adv_smooth.reporting.transfer import Transfer, transfer_markdown, transfer_matrix
from adv_smooth.utils.checkpoints import load_checkpoint
from adv_smooth.utils.errors import UserError


def job_network(job: Job) -> tuple[nn.Module, object]:
    """(the job's network with its tested weights, in eval mode; its data module, loaded)."""
    cfg = OmegaConf.create(job.config)
    try:
        datamodule = build_datamodule(cfg)
    except UserError as e:  # a data module names its own options (`root=`): the job's config holds them
        raise UserError(keyed(str(e), cfg)) from None
    checkpoint = job.results.get("tested_checkpoint") or str(job.path / "checkpoints" / "last.ckpt")
    if not Path(checkpoint).is_file():
        raise UserError(f"--transfer: {job.path} has no checkpoint to load ({checkpoint})")
    state = load_checkpoint(checkpoint).get("state_dict", {})
    return load_network(cfg, datamodule, state, f"--transfer: {checkpoint}").net.eval(), datamodule


def _label(job: Job, roots: list[Path]) -> str:
    for root in roots:
        try:
            return str(job.path.relative_to(root)) or job.path.name
        except ValueError:
            continue
    return job.path.name


def run_transfer(jobs: list[Job], roots: list[Path], images: int, snr_db: float, norm: str) -> tuple[Transfer, str]:
    """The matrix over the completed jobs (at least two, one test split) and its description."""
    completed = [j for j in jobs if j.status == COMPLETED]
    if len(completed) < 2:
        raise UserError(f"--transfer needs at least two completed jobs, found {len(completed)}")
    splits = {str((j.results.get("split_fingerprints") or {}).get("test")) for j in completed}
    if len(splits) > 1:
        raise UserError("--transfer: the jobs do not share one test split (their split_fingerprints differ)")
    models, data = {}, None
    for job in completed:
        net, datamodule = job_network(job)
        models[_label(job, roots)] = net
        data = data or datamodule
    x, y = data.splits.test  # the whole test split in memory (uint8 images, as the data modules keep them)
    x, y = x[:images], y[:images]
    x = x.float() / 255 if x.dtype == torch.uint8 else x
    attack = PGD(norm=norm, steps=20, include_fgsm=False, generator=torch.Generator().manual_seed(0))
    what = f"PGD {'Linf' if norm == 'linf' else 'L2'} (20 steps) at {snr_db:g} dB on the first {len(y)} test images"
    return transfer_matrix(models, x, y, attack, snr_db), what


def transfer_section(jobs: list[Job], roots: list[Path], images: int, snr_db: float, norm: str) -> list[str]:
    result, what = run_transfer(jobs, roots, images, snr_db, norm)
    return transfer_markdown(result, what)
