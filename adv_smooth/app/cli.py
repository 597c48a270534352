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

from adv_smooth.app import run_dir, suggest
from adv_smooth.app.console import quiet_console
from adv_smooth.app.failures import explain, flat
from adv_smooth.app.summary import sweep_line
from adv_smooth.config.launchers import check_launcher
from adv_smooth.utils.errors import UserError
from adv_smooth.utils.ranks import launched_rank_zero


def config_dir() -> str:
    """`adv_smooth/conf` inside an installed wheel, else the repository's top-level `conf/`."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    if packaged.is_dir():
        return str(packaged)
    return str(package.parent / "conf")


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


def run_entry(
    hydra_entry: Callable[[], Any], argv: list[str] | None = None, resumable: bool = True, config_name: str = "config"
) -> None:
    """An entry point's `main()`: vet the command line, run the Hydra app, summarize failed sweep jobs.

    `resumable`: a non-null `ckpt_path` resumes the run in its dir (training), so a completed dir is
    accepted for it; evaluation's `ckpt_path` names what to evaluate, so only `overwrite=true` is.
    `config_name`: the entry point's primary config (its `@hydra.main`), what the command line is checked against.
    """
    quiet_console()  # Lightning's lines no user can act on (app/console.py)
    args = sys.argv[1:] if argv is None else argv
    if argv is None and _is_sweep_config_request(args):
        args = sys.argv[1:] = _first_job_request(args)
    claimed: Path | None = None
    try:
        composed = check_command_line(args, config_name=config_name)
        if composed is not None and launched_rank_zero():  # DDP's other processes share rank 0's dir and lock
            claimed = claim_run_dir(composed, resumable)
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


def _is_sweep_config_request(args: list[str]) -> bool:
    return any(a in ("-m", "--multirun") for a in args) and any(a in ("-c", "--cfg") for a in args)


def _first_job_request(args: list[str]) -> list[str]:
    """`-m ... --cfg job`: Hydra prints one job's config and refuses --multirun with --cfg, so show the
    sweep's first job (each sweep override at its first value; a preset's own sweep, e.g. its rows and
    seeds, at its default), and say so on stderr."""
    flags = [a for a in args if a.startswith("-") and a not in ("-m", "--multirun")]
    cfg_at = next(i for i, a in enumerate(args) if a in ("-c", "--cfg"))
    kind = args[cfg_at + 1] if cfg_at + 1 < len(args) else None
    overrides = [a for i, a in enumerate(args) if not a.startswith("-") and i != cfg_at + 1]
    print(
        "note: --multirun with --cfg shows the sweep's first job (each swept key at its first value)", file=sys.stderr
    )
    return [*flags, *([kind] if kind else []), *_first_job(overrides)]


def claim_run_dir(cfg: DictConfig, resumable: bool) -> Path | None:
    """Before Hydra writes into a single run's existing dir: take its lock, refuse a completed run there.

    Returns the dir whose lock this process now holds (the job reuses it), None when there is none yet.
    """
    try:
        directory = Path(str(cfg.hydra.run.dir))
    except Exception:  # an interpolation only Hydra's job can resolve: the job itself still checks
        return None
    if not directory.is_dir() or not run_dir.acquire(directory):
        return None
    ckpt_path = cfg.get("ckpt_path")
    try:
        run_dir.refuse_completed(
            directory,
            resuming=resumable and ckpt_path not in (None, "", "null"),
            overwrite=cfg.get("overwrite") is True,
        )
    except UserError:
        run_dir.release(directory)
        raise
    return directory


def check_command_line(args: list[str], conf: str | None = None, config_name: str = "config") -> DictConfig | None:
    """Refuse unknown group options and keys the configs lack, as one `UserError` line, before Hydra runs.

    Hydra reports these itself, over several lines and with exit status 1; composing once here
    (a fraction of a second) turns them into the project's one-line errors. Returns the composed config
    (with its `hydra` node) of a single run, None otherwise (a sweep, --cfg, --info, help).
    """
    from hydra._internal.utils import get_args_parser

    parsed, _ = get_args_parser().parse_known_args(args)
    if parsed.help or parsed.hydra_help or parsed.shell_completion or parsed.experimental_rerun:
        return
    modes = [
        flag
        for flag, on in (
            ("--run", parsed.run),
            ("--multirun", parsed.multirun),
            ("--cfg", parsed.cfg),
            ("--info", parsed.info),
        )
        if on
    ]
    if len(modes) > 1:  # Hydra refuses this too, with a traceback
        raise UserError(
            f"{' and '.join(modes)} cannot be combined: give one of --run, --multirun, --cfg, --info "
            "(to see one sweep job's config, drop --multirun and pass that job's values with --cfg job)"
        )
    check_group_options(parsed.overrides, conf)
    check_launcher(parsed.overrides, conf or config_dir())  # its packages, before Hydra looks for them
    if parsed.config_dir is not None or parsed.config_path is not None:
        return None
    composed = check_composition(parsed.overrides, parsed.config_name or config_name, parsed.multirun, conf)
    return None if parsed.multirun or parsed.cfg or parsed.info else composed


def check_composition(overrides: list[str], config_name: str, multirun: bool, conf: str | None = None) -> DictConfig:
    """Compose the config as Hydra will (a sweep's first value stands for all of them)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    def composed(job: list[str]) -> DictConfig:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=conf or config_dir(), version_base="1.3"):
                return compose(config_name, overrides=job, return_hydra_config=True)
        finally:
            GlobalHydra.instance().clear()

    job = _first_job(overrides) if multirun else overrides
    try:
        cfg = composed(job)
    except (HydraException, OmegaConfBaseException) as e:  # a mistyped key: did-you-mean, not Hydra's "+key" advice
        advice = suggest.unknown_override(str(e), job, composed, conf or config_dir())
        raise UserError(advice or f"cannot compose the config: {suggest.without_append_advice(_one_line(e))}") from None
    suggest.check_added_keys(job, cfg, conf or config_dir())  # a `+key` nothing reads
    return cfg


def _first_job(overrides: list[str]) -> list[str]:
    """Each sweep override replaced by its first value; sweeps that cannot be enumerated are left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    job = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            job.append(override.input_line)
            continue
        try:
            job.append(f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}")
        except Exception:  # glob() over options, interval(): Hydra's own sweep validation covers them
            continue
    return job


def _one_line(e: BaseException) -> str:
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    cause = e.__cause__
    if cause is not None and str(cause).strip():
        text += f" ({str(cause).splitlines()[0].strip()})"
    return text


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


def check_group_options(args: list[str], conf: str | None = None) -> None:
    """Refuse `group=option` overrides naming an option that does not exist, in one line.

    Hydra's own message spans several lines and ends with a hint about tracebacks; this runs first.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    root = Path(conf or config_dir())
    groups = {p.name for p in root.iterdir() if p.is_dir()}
    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    except Exception as e:  # Hydra's grammar errors: keep their first line
        raise UserError(f"cannot parse overrides: {str(e).splitlines()[0]}") from None
    for override in overrides:
        group = override.key_or_group
        if group not in groups or override.is_delete():
            continue
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        available = sorted(p.stem for p in (root / group).glob("*.yaml"))
        for value in values:
            if value is None and group == "experiment":
                continue
            if str(value) not in available:
                guess = suggest.closest(str(value), available)
                meant = f"; did you mean {group}={guess}?" if guess else ""
                listed = ", ".join(available)
                raise UserError(f"{group}={value!r} is not a known {group} option{meant} (available: {listed})")


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
            {
                "status": "interrupted",
                "signal": e.signal_name,
                "checkpoint": e.checkpoint,
                "epochs_done": e.epochs_done,
                "global_step": e.global_step,
                "error": str(e),
            },
        )
        if job is not None:
            job.error = str(e)
        print(f"error: {e}{note}", file=sys.stderr)
        raise Interrupted(e.exit_status) from None
    except Exception as e:
        message = explain(e, cfg)
        error = message or f"{type(e).__name__}: {flat(e)}"
        note = _record(out, {"status": "failed", "error": error})
        _report(e, error + note if message else None, job, multirun)
    finally:
        if taken:
            run_dir.release(out)
    metric = cfg.get("optimized_metric")
    if metric:
        return results.get("optimized", {}).get(metric, results.get("metrics", {}).get(metric))
    return None


def _record(out: Path | None, record: dict[str, Any]) -> str:
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
