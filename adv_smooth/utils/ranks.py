"""Which process of a multi-process run this is, before any process group exists.

Lightning's `ddp` re-runs the command line once per extra device (setting `LOCAL_RANK`, `NODE_RANK`), SLURM's
`srun` starts one task per GPU (`SLURM_PROCID`), torchrun sets `RANK`. Every such process runs the entry point;
only the first may take the run dir's lock and write results.json or a failure record, the others compute.
"""

from __future__ import annotations

import os

RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")


def launched_rank_zero() -> bool:
    """False when the environment names this process as anything but the first of its run."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) != 0:
            return False
    return True
