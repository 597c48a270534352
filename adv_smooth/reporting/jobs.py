"""Finding the jobs of one or more sweep (or run) directories and reading what each left behind.

A job directory is any directory holding a `results.json` or a `.hydra/config.yaml`; the second kind
without the first is a job that is still running, was killed, or never got far. Every job is kept, with
its status, so the report can list the ones that are not in its tables instead of dropping them.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adv_smooth.run_record import ABSENT, RecordError, read
from adv_smooth.utils.errors import UserError

COMPLETED = "completed"
FAILED = "failed"
MISSING = "no results.json"

# Config entries that are not hyperparameters: the seed (what the table averages over), the defense's
# `components`, which only repeat the group's knobs through interpolation, and the TensorBoard run name,
# which is made from the job's overrides (seed included: conf/logger/tensorboard.yaml, utils/run_name.py).
_IGNORED_PREFIXES = ("defense.components.",)
_IGNORED_KEYS = ("seed", "logger.tensorboard.version")
_JOB_DIR = "<job>"


@dataclass
class Job:
    """One Hydra job: where it is, how it ended, and its results and config when it wrote them."""

    path: Path
    status: str
    error: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return self.results.get("config") or {}

    @property
    def choices(self) -> dict[str, str]:
        return {k: str(v) for k, v in (self.results.get("choices") or {}).items() if not k.startswith("hydra")}

    def scalars(self) -> dict[str, float]:
        """Every scalar the job recorded: test metrics, overlaid with the end-of-fit ones (val/..., train/...)."""
        out: dict[str, float] = {}
        for section in ("metrics", "fit"):
            for key, value in (self.results.get(section) or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[key] = float(value)
        return out

    def warnings(self) -> list[dict[str, Any]]:
        """Honesty warnings, at the top level of results.json or inside its test `metrics` section."""
        found = []
        for section in (self.results, self.results.get("metrics") or {}):
            honesty = section.get("honesty")
            if isinstance(honesty, dict):
                found += [w for w in honesty.get("warnings") or [] if isinstance(w, dict) and w not in found]
        return found

    def hyperparameters(self) -> dict[str, Any]:
        """The flattened resolved config plus the Hydra choices (as `choice:<group>`), minus the seed.

        Paths inside the job's own directory are replaced by `<job>` so they compare equal across jobs.
        """
        own = {str(self.path), str(self.path.resolve())}
        root = (self.config.get("trainer") or {}).get("default_root_dir")
        if root:
            own.add(str(root))
        flat: dict[str, Any] = {f"choice:{k}": v for k, v in self.choices.items()}
        for key, value in flatten(self.config).items():
            if key in _IGNORED_KEYS or key.startswith(_IGNORED_PREFIXES):
                continue
            if isinstance(value, str):
                for prefix in sorted(own, key=len, reverse=True):
                    value = value.replace(prefix, _JOB_DIR)
            flat[key] = value
        return flat


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists become their JSON text so every value is hashable."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(obj, (list, tuple)):
        return {prefix[:-1]: json.dumps(obj, sort_keys=True, default=str)}
    return {prefix[:-1]: obj} if prefix else {}


def natural_key(path: Path) -> list[Any]:
    """Sort `multirun/.../2` before `.../10`: numbers in path parts compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def _is_job(directory: Path) -> bool:
    return (directory / "results.json").is_file() or (directory / ".hydra" / "config.yaml").is_file()


def load_job(directory: Path) -> Job:
    """Read one job directory; an unreadable results.json counts as a failure, with the reason."""
    overrides: list[str] = []
    overrides_file = directory / ".hydra" / "overrides.yaml"
    if overrides_file.is_file():
        from omegaconf import OmegaConf

        try:
            overrides = [str(o) for o in OmegaConf.load(overrides_file) or []]
        except Exception:  # noqa: BLE001 - a damaged overrides.yaml only costs the job its label
            overrides = ["(unreadable .hydra/overrides.yaml)"]
    results_file = directory / "results.json"
    if not results_file.is_file():
        return Job(directory, MISSING, "still running, killed, or never started", overrides=overrides)
    try:
        record = read(results_file)  # validated, an older layout migrated
    except RecordError as e:
        return Job(directory, FAILED, f"unreadable results.json: {e.reason}", overrides=overrides)
    results = record.to_dict()
    if record.status != COMPLETED:
        error = record.error if record.error is not ABSENT else f"status {record.status!r}"
        return Job(directory, FAILED, error, results, overrides)
    return Job(directory, COMPLETED, "", results, overrides)


def find_jobs(paths: list[str | Path]) -> list[Job]:
    """Every job below each path, in natural path order. A path that is missing or holds no job is a UserError."""
    jobs: list[Job] = []
    seen: set[Path] = set()
    for given in paths:
        top = Path(given)
        if not top.exists():
            raise UserError(f"{given}: no such directory")
        if not top.is_dir():
            raise UserError(f"{given}: not a directory (give a sweep or run directory)")
        found: list[Path] = []
        for current, dirnames, _ in os.walk(top):
            here = Path(current)
            if _is_job(here):
                found.append(here)
                dirnames[:] = []  # checkpoints/, tensorboard/ ... hold no jobs
            else:
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if not found:
            raise UserError(f"{given}: no jobs found (no results.json or .hydra/config.yaml below it)")
        for directory in sorted(found, key=natural_key):
            if directory.resolve() not in seen:  # overlapping arguments: each job once
                seen.add(directory.resolve())
                jobs.append(load_job(directory))
    return jobs
