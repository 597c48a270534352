"""What every entry point shares: locating the configs, one-line user errors, failure records.

User mistakes (`UserError`, an unknown config-group option) print one line and exit with status 2;
`HYDRA_FULL_ERROR=1` shows the traceback instead. In a multirun, a failing job records its failure
in its own results.json and re-raises, so Hydra runs the remaining jobs and reports the failure.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from adv_smooth.errors import UserError
from adv_smooth.utils.io import write_json_atomic


def config_dir() -> str:
    """`adv_smooth/conf` inside an installed wheel, else the repository's top-level `conf/`."""
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return str(packaged)
    return str(Path(__file__).resolve().parent.parent / "conf")


def full_errors() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


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
                raise UserError(f"{group}={value!r} is not a known {group} option (available: {', '.join(available)})")


def run_task(task: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> Any:
    """Run one Hydra job with the project's error policy; return the metric an optimizer reads."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        results = task(cfg)
    except Exception as e:
        out = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
        if out is not None:
            write_json_atomic(out / "results.json", {"status": "failed", "error": f"{type(e).__name__}: {e}"})
        if multirun or full_errors():
            raise
        if isinstance(e, UserError):
            fail(str(e))
        fail(f"{type(e).__name__}: {e}" if _is_known_failure(e) else _reraise(e))
    metric = cfg.get("optimized_metric")
    if metric:
        return results.get("optimized", {}).get(metric, results.get("metrics", {}).get(metric))
    return None


def _is_known_failure(e: Exception) -> bool:
    from adv_smooth.lightning import NonFiniteLossError

    return isinstance(e, NonFiniteLossError)


def _reraise(e: Exception) -> str:
    raise e
