"""A run's name from its command line, for TensorBoard: `defense=adv,seed=1` rather than `3/tensorboard`.

TensorBoard names a run by its directory. Under the run dir alone (`multirun/<date>/<time>/<job>/`) the
jobs of a sweep are told apart by their number only, so the config resolver `${run_name:...}` gives the
TensorBoard logger a version directory named by the job's overrides (conf/logger/tensorboard.yaml).
Overrides that do not change what is trained (resuming, overwriting, where the data lives, the progress
bar) are left out, so a resumed run logs into the same directory; the knobs a study varies (defense, lr, epochs,
seed, dataset, model) lead, so a name too long for a directory, cut to its start and a hash of the whole, keeps
them; a path separator inside a value becomes `_`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from omegaconf import OmegaConf

RESOLVER = "run_name"
MAX_LENGTH = 120
NO_OVERRIDES = "defaults"  # the name of a run without overrides
IGNORED = ("resume", "ckpt", "overwrite", "dataset.root", "dataset.download", "trainer.enable_progress_bar")
# The overrides that tell the runs of a study apart come first, so a name cut to MAX_LENGTH keeps them.
KNOBS = ("defense", "optim.lr", "optim.schedule", "trainer.max_epochs", "seed", "dataset", "model", "experiment", "row")


def run_name(overrides: Iterable[str] | None) -> str:
    """`a=1,b=2` from the job's task overrides; `defaults` for none (TensorBoard named such a run after its parent
    directory, "tensorboard")."""
    kept = []
    for override in overrides or []:
        key = str(override).split("=", 1)[0].lstrip("+~")
        if key not in IGNORED:
            kept.append((_knob_rank(key), str(override).replace("/", "_").replace("\\", "_")))
    kept.sort(key=lambda ranked: ranked[0])  # stable: the rest keep the command line's order
    name = ",".join(text for _, text in kept) or NO_OVERRIDES
    if len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[: MAX_LENGTH - 11]}_{digest}"


def _knob_rank(key: str) -> int:
    """The place of an override's key among `KNOBS` (a group choice such as `row/svhn_table1` counts as `row`)."""
    ranks = [i for i, knob in enumerate(KNOBS) if key == knob or key.startswith((f"{knob}.", f"{knob}/"))]
    return ranks[0] if ranks else len(KNOBS)


def register() -> None:
    """Make `${run_name:${hydra:overrides.task}}` resolvable (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, run_name)
