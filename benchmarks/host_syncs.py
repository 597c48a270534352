"""Host-sync audit of both training paths: every Python-level call that would make the host wait for a GPU, per
step and by call site (`adv_smooth.utils.host_sync.HostSyncAudit`). Part of `python -m benchmarks.training`.
"""

from __future__ import annotations

from typing import Any

from adv_smooth.utils.host_sync import HostSyncAudit
from benchmarks._setup import RunSettings, build_run, synthetic_batches
from benchmarks.training_paths import lightning_fit, plain_fit


def audit(cfg: Any, case_name: str, classes: int, tiny: RunSettings, steps: int = 10) -> dict[str, Any]:
    """Per-step sync sites of both paths for the composed `cfg` at the `tiny` settings.

    `steps` = 10 with log_every_n_steps = 10 covers one logging interval, so a site firing at 0.1/step is
    the logging interval and 1.0/step is every step.
    """
    s = tiny
    batches = synthetic_batches(1 + steps, tiny.batch_size, classes, s.device, s.seed)
    out: dict[str, Any] = {
        "case": case_name,
        "steps": steps,
        "batch_size": tiny.batch_size,
        "log_every_n_steps": int(cfg.trainer.get("log_every_n_steps", 10)),
    }
    for path in ("plain", "lightning"):
        module = build_run(cfg, classes, s.seed).to(s.device)
        audit = HostSyncAudit()
        audit.recording = False

        def start(a: HostSyncAudit = audit) -> None:
            a.recording = True

        def stop(a: HostSyncAudit = audit) -> None:
            a.recording = False

        with audit:
            if path == "plain":
                plain_fit(module, batches, 1, s.device, s.precision, on_start=start)
            else:
                lightning_fit(
                    module,
                    batches,
                    1,
                    s.device,
                    s.precision,
                    s.logger,
                    out["log_every_n_steps"],
                    on_start=start,
                    on_stop=stop,
                )
        out[path] = audit.per_step(steps)
    return out


def format_lines(h: dict[str, Any]) -> list[str]:
    """The report lines of `audit`'s result."""
    lines = [
        f"host syncs per step (would block on a GPU), {h['case']}, {h['steps']} steps, "
        f"log_every_n_steps={h['log_every_n_steps']}:"
    ]
    for p in ("plain", "lightning"):
        sites = h[p]
        lines.append(f"  {p}: {sum(x['per_step'] for x in sites):.1f} per step")
        lines += [f"    {x['per_step']:.1f}/step  {x['kind']:<32} {x['site']}" for x in sites]
    return lines
