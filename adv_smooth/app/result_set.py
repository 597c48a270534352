"""A run's result files are replaced as a set, and only by a run that completed.

A completed run is its results.json and the files beside it that it describes (`per_image_test.npz`,
`robustness_test.png`, an ensemble's `members/`, an evaluation's TensorBoard events). A later command in the
same dir (a resume, `overwrite=true`) must not leave a mix of two runs there, nor a failure record beside the
completed run's files. So a task writes its result files into `<run dir>/.incoming/` (`prepare`), and only
once it has completed moves them in (`commit`): the old results.json goes first, so that during the few
renames the dir claims no completed run, then the old set's other files, then the new set arrives with its
results.json last. A task that fails or is killed leaves the completed set as it was (its `.incoming/` is
emptied by the next run there). A training run that replaces a completed one (`overwrite=true`) stages its
checkpoints too, so the completed run's weights stay beside its results until the new set, checkpoints
included, moves in.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from adv_smooth.app.run_dir import status
from adv_smooth.run_record import FILE, RunRecord
from adv_smooth.utils.io import STAGING

RESULTS = FILE
CHECKPOINTS = "checkpoints"
# Entries of a run dir that belong to its result set (besides what the new set itself brings).
RESULT_PATTERNS = (RESULTS, "per_image_*.npz", "robustness_*.png", "members")


def staging_dir(out: Path) -> Path:
    return out / STAGING


def prepare(out: Path, keep_checkpoints: bool = False) -> Path:
    """An empty staging dir in `out` (what a killed run left there is removed; its checkpoints stay when this
    run resumes from them)."""
    staging = staging_dir(out)
    if keep_checkpoints and staging.is_dir():
        for entry in staging.iterdir():
            if entry.name != CHECKPOINTS:
                _remove(entry)
    else:
        _remove(staging)
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def stages_checkpoints(out: Path, resume: object, overwrite: bool) -> bool:
    """Whether this training run writes its checkpoints into the staging dir too: when it replaces a completed
    run (`overwrite=true`, the completed run's checkpoints stay until the new set moves in), or resumes
    (`resume=last`) such a run that was interrupted. A resume of the completed run itself continues it in
    place, as any resume does (only its result files are staged)."""
    if resume == "last":
        return (staging_dir(out) / CHECKPOINTS / "last.ckpt").is_file()
    return resume in (None, "", "null") and overwrite and status(out) == "completed"


def redirect_checkpoints(callbacks: list[Any], out: Path) -> None:
    """Point the callbacks that write checkpoints into `out/checkpoints` (or into the trainer's default, the
    same dir) at the staging dir's."""
    final = (out / CHECKPOINTS).resolve()
    for callback in callbacks:
        if hasattr(callback, "dirpath") and (callback.dirpath is None or Path(callback.dirpath).resolve() == final):
            callback.dirpath = os.path.realpath(staging_dir(out) / CHECKPOINTS)


def commit(out: Path, record: RunRecord) -> RunRecord:
    """Write `record` and move the staged set into `out`, replacing the previous set whole; returns the record.

    Paths in the record that point into the staging dir (a checkpoint staged with the set) are rewritten to
    where the files now are.
    """
    staging = staging_dir(out)
    staged = json.dumps(str(staging) + os.sep)[1:-1]
    final = json.dumps(str(out) + os.sep)[1:-1]
    text = json.dumps(record.to_dict(), default=str).replace(staged, final)
    record = RunRecord.from_dict(json.loads(text), staging / RESULTS)
    record.write(staging)
    (out / RESULTS).unlink(missing_ok=True)  # from here on, no completed run is claimed until the last rename
    arriving = {entry.name for entry in staging.iterdir()}
    for pattern in RESULT_PATTERNS:
        for old in out.glob(pattern):
            if old.name not in arriving:
                _remove(old)
    for entry in sorted(staging.iterdir(), key=lambda e: e.name == RESULTS):  # results.json last
        _replace(entry, out / entry.name)
    _remove(staging)
    return record


def _replace(source: Path, target: Path) -> None:
    """Rename `source` over `target`; a directory target is moved out of the way first (rename cannot replace it)."""
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f".{target.name}.replaced")
        _remove(old)
        os.replace(target, old)
        os.replace(source, target)
        _remove(old)
    else:
        os.replace(source, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
