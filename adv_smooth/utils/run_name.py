"""A run's name from its command line, for TensorBoard: `defense=adv,seed=1` rather than `3/tensorboard`.

TensorBoard names a run by its directory. Under the run dir alone (`multirun/<date>/<time>/<job>/`) the
jobs of a sweep are told apart by their number only, so the config resolver `${run_name:...}` gives the
TensorBoard logger a version directory named by the job's overrides (conf/logger/tensorboard.yaml).
Overrides that do not change what is trained (resuming, overwriting, where the data lives, the progress
bar) are left out, so a resumed run logs into the same directory; a path separator inside a value
becomes `_`, and a name too long for a directory keeps its start and a hash of the whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from omegaconf import OmegaConf

RESOLVER = "run_name"
MAX_LENGTH = 120
NO_OVERRIDES = "defaults"  # the name of a run without overrides
IGNORED = ("resume", "ckpt", "overwrite", "dataset.root", "dataset.download", "trainer.enable_progress_bar")


def run_name(overrides: Iterable[str] | None) -> str:
    """`a=1,b=2` from the job's task overrides; `defaults` for none (TensorBoard named such a run after its parent
    directory, "tensorboard")."""
    kept = []
    for override in overrides or []:
        key = str(override).split("=", 1)[0].lstrip("+~")
        if key not in IGNORED:
            kept.append(str(override).replace("/", "_").replace("\\", "_"))
    name = ",".join(kept) or NO_OVERRIDES
    if len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[: MAX_LENGTH - 11]}_{digest}"


def register() -> None:
    """Make `${run_name:${hydra:overrides.task}}` resolvable (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, run_name)
