"""What every entry point shares: locating the configs, one-line user errors, failure records.

User mistakes (`UserError`, an unknown config-group option, a key the configs do not have) print one
line and exit with status 2; `HYDRA_FULL_ERROR=1` shows the traceback instead. In a multirun, a
failing job records its failure in its own results.json and re-raises (never `sys.exit`, which would
end the sweep), so Hydra runs the remaining jobs; the entry point then exits with status 2 and one
line listing the failed jobs.

A job holds its run dir's lock while it runs (`run_dir`), and a completed run's results.json is never
replaced by a failure record. A single run is vetted before Hydra writes anything into its run dir:
a dir locked by another run, or holding a completed run that this command would not resume, is
refused there, so its `.hydra/` and log stay as they were. A job stopped by SIGTERM / SIGUSR1
(`lightning.preemption`) records status "interrupted" and exits with 128 + the signal number.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from adv_smooth.app import run_dir
from adv_smooth.app.console import quiet_console
from adv_smooth.app.preflight.command_line import (
    _first_job_request,
    _is_sweep_config_request,
    check_command_line,
    renamed_keys,
)
from adv_smooth.app.preflight.failures import explain, flat
from adv_smooth.app.provenance import provenance
from adv_smooth.app.summary import sweep_line
from adv_smooth.run_record import ABSENT, Provenance, RunRecord
from adv_smooth.utils.errors import UserError
from adv_smooth.utils.ranks import launched_rank_zero


def full_errors() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


class JobFailedError(CompactHydraException):
    """A multirun job's failure, re-raised for Hydra: compact, so Hydra prints its message, not a traceback."""


class Interrupted(SystemExit):
    """The job stopped on a signal: the process exits with 128 + its number, even in the middle of a sweep."""


@dataclass
class JobOutcome:
    """One multirun job as the final summary lists it."""

    output_dir: str
    overrides: list[str]
    error: str | None = None
    sweep_dir: str = ""  # hydra.sweep.dir as configured (relative to where the sweep was launched)


JOBS: list[JobOutcome] = []  # this process's multirun jobs, in launch order (the basic launcher runs them here)


def run_entry(hydra_entry: Callable[[], Any], argv: list[str] | None = None, config_name: str = "config") -> None:
    """An entry point's `main()`: vet the command line, run the Hydra app, summarize failed sweep jobs.

    `config_name`: the entry point's primary config (its `@hydra.main`), what the command line is checked against.
    """
    quiet_console()  # Lightning's lines no user can act on (app/console.py)
    args = sys.argv[1:] if argv is None else argv
    if argv is None and _is_sweep_config_request(args):
        args = sys.argv[1:] = _first_job_request(args)
    if argv is None:  # the old spellings (ckpt_path=) for this release, each with a notice: Hydra reads sys.argv
        args = sys.argv[1:] = renamed_keys(args, config_name)
    claimed: Path | None = None
    try:
        composed = check_command_line(args, config_name=config_name)
        if composed is not None and launched_rank_zero():  # DDP's other processes share rank 0's dir and lock
            claimed = claim_run_dir(composed)
    except UserError as e:
        fail(str(e))
    JOBS.clear()
    try:
        hydra_entry()
        _print_sweep_line()
    except Interrupted:
        raise
    except SystemExit:
        summary = failed_jobs_summary()
        if summary:
            _print_sweep_line()
            fail(summary)
        raise
    finally:
        if claimed is not None:
            run_dir.release(claimed)


def claim_run_dir(cfg: DictConfig) -> Path | None:
    """Before Hydra writes into a single run's existing dir: take its lock, refuse a completed run there.

    A training's `resume` continues the run in its dir, so a completed dir is accepted for it; otherwise
    (an evaluation has no `resume`) only `overwrite=true` is. Returns the dir whose lock this process now holds
    (the job reuses it), None when there is none yet.
    """
    try:
        directory = Path(str(cfg.hydra.run.dir))
    except Exception:  # an interpolation only Hydra's job can resolve: the job itself still checks
        return None
    if not directory.is_dir():
        run_dir.check_creatable(directory)  # a read-only parent: one line here, not Hydra's traceback
        return None
    if not run_dir.acquire(directory):
        return None
    try:
        run_dir.refuse_completed(
            directory,
            resuming=cfg.get("resume") not in (None, "", "null"),
            overwrite=cfg.get("overwrite") is True,
        )
    except UserError:
        run_dir.release(directory)
        raise
    return directory


def _sweep_dir() -> str:
    from hydra.core.hydra_config import HydraConfig

    return str(HydraConfig.get().sweep.dir)


def _print_sweep_line() -> None:
    """A sweep ends by naming its directory and the report command (stdout; failures follow on stderr)."""
    dirs = list(dict.fromkeys(job.sweep_dir for job in JOBS if job.sweep_dir))
    if dirs:
        print(sweep_line(dirs[0], sum(job.error is None for job in JOBS), len(JOBS)), flush=True)


def failed_jobs_summary() -> str | None:
    """`N of M jobs failed: <dir> (<overrides>): <error>; ...`, or None when no job of this process failed."""
    failed = [job for job in JOBS if job.error is not None]
    if not failed:
        return None
    # Name each job by what sets it apart: the overrides every job shares say nothing about it.
    shared = set.intersection(*(set(job.overrides) for job in JOBS)) if len(JOBS) > 1 else set()
    listed = "; ".join(
        f"{job.output_dir} ({' '.join(o for o in job.overrides if o not in shared)}): {job.error}" for job in failed
    )
    return f"{len(failed)} of {len(JOBS)} jobs failed: {listed}"


def run_task(task: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> Any:
    """Run one Hydra job with the project's error policy; return the metric an optimizer reads."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from adv_smooth.lightning.preemption import Preempted

    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    out = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    job = JobOutcome(str(out), list(HydraConfig.get().overrides.task), sweep_dir=_sweep_dir()) if multirun else None
    if job is not None:
        JOBS.append(job)
    try:
        taken = run_dir.acquire(out) if out is not None and launched_rank_zero() else False
    except UserError as e:  # another run's dir: not ours to write a failure record into
        _report(e, str(e), job, multirun)
    try:
        results = task(cfg)
    except Preempted as e:
        note = _record(
            out,
            RunRecord(
                status="interrupted",
                signal=e.signal_name,
                checkpoint=e.checkpoint,
                epochs_done=e.epochs_done,
                global_step=e.global_step,
                error=str(e),
                provenance=_provenance(),
            ),
        )
        if job is not None:
            job.error = str(e)
        print(f"error: {e}{note}", file=sys.stderr)
        raise Interrupted(e.exit_status) from None
    except Exception as e:
        message = explain(e, cfg)
        error = message or f"{type(e).__name__}: {flat(e)}"
        note = _record(out, RunRecord(status="failed", error=error, provenance=_provenance()))
        _report(e, error + note if message else None, job, multirun)
    finally:
        if taken:
            run_dir.release(out)
    metric = cfg.get("optimized_metric")
    if metric:
        return results.get("optimized", {}).get(metric, results.get("metrics", {}).get(metric))
    return None


def _provenance() -> Provenance:
    """The failed run's commit and versions; never raises (the error being reported comes first)."""
    try:
        return provenance()
    except Exception:  # noqa: BLE001 - a failure record without provenance beats none
        return ABSENT


def _record(out: Path | None, record: RunRecord) -> str:
    """Write the job's failure record; '' when written, else why not, as a suffix for the one error line."""
    if not launched_rank_zero():  # rank 0 records the run's outcome
        return ""
    why = run_dir.write_record(out, record) if out is not None else None
    return f" ({why})" if why else ""


def _report(e: Exception, message: str | None, job: JobOutcome | None, multirun: bool) -> None:
    """End the job: one line and exit status 2 (`message`), a compact multirun failure, or the traceback."""
    if job is not None:
        job.error = message or f"{type(e).__name__}: {flat(e)}"
    if full_errors():
        raise e
    if multirun:
        raise JobFailedError(job.error if job else str(e)) from e
    if message is None:
        raise e
    fail(message)
