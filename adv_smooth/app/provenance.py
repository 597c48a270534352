"""What made a run, for its results.json: the code's commit, the library versions, the data's split sizes and
fingerprints (`data/identity.py`: which images were evaluated, so the report pairs only runs on the same ones).

A figure quoted from a run is only reproducible with the code and the libraries that produced it: the
same seed gives other numbers under another torch, and a number from an uncommitted tree cannot be
traced back at all. The commit is the one of the source tree this package runs from (not of the working
directory), with `git_dirty` when tracked files differ from it; "unknown" when the package is not in a
git checkout (an installed wheel) or git is missing.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from adv_smooth.data.identity import split_fingerprints
from adv_smooth.run_record import Provenance

UNKNOWN = "unknown"
_DISTRIBUTIONS = {
    "torch": "torch",
    "torchvision": "torchvision",
    "pytorch_lightning": "pytorch-lightning",
    "hydra": "hydra-core",
    "omegaconf": "omegaconf",
    "numpy": "numpy",
}


def _git(source: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(source: Path | None = None) -> dict[str, Any]:
    """`{"git_commit": sha or "unknown", "git_dirty": bool or None}` of the tree holding `source` (this package).

    Only a checkout whose top level holds the package counts: a wheel installed in some other project's
    repository is not that project's commit.
    """
    package = Path(__file__).resolve().parents[1] if source is None else Path(source).resolve()
    top = _git(package, "rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != package.parent:
        return {"git_commit": UNKNOWN, "git_dirty": None}
    commit = _git(package, "rev-parse", "HEAD")
    if not commit:
        return {"git_commit": UNKNOWN, "git_dirty": None}
    status = _git(package, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def versions() -> dict[str, str]:
    """Python, this package and the libraries whose version changes the numbers."""
    from adv_smooth import __version__

    found = {"python": platform.python_version(), "adv_smooth": __version__}
    for name, distribution in _DISTRIBUTIONS.items():
        module = sys.modules.get(name)  # an imported module's own version names its build (torch's +cu130)
        if getattr(module, "__version__", None):
            found[name] = str(module.__version__)
            continue
        try:
            found[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[name] = UNKNOWN
    return found


def split_sizes(datamodule: Any) -> dict[str, int | None]:
    """Images per split as the run used them (the validation split carved from the training data)."""
    sizes = {}
    for split in ("train", "val", "test"):
        dataset = getattr(datamodule, f"{split}_set", None)
        sizes[split] = len(dataset) if dataset is not None else None
    return sizes


def provenance(datamodule: Any = None, fingerprints: dict[str, Any] | None = None) -> Provenance:
    """The record's provenance block: commit and versions, with `datamodule` its split sizes and fingerprints
    (an evaluation passes the `fingerprints` it computed already)."""
    record = Provenance(**git_state(), versions=versions())
    if datamodule is not None:
        record.split_sizes = split_sizes(datamodule)
        record.split_fingerprints = split_fingerprints(datamodule)
    if fingerprints is not None:
        record.split_fingerprints = fingerprints
    return record
