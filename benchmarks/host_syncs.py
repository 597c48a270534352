"""Host-sync audit: every Python-level call that would make the host wait for a GPU, per step and by call site.

`HostSyncAudit` counts them (a `TorchFunctionMode`); `audit` runs it over both training paths (part of `python -m
benchmarks.training`); `python -m benchmarks.host_syncs --smoke` checks the audit itself and the library's
sync-free pieces (the accuracy metric, the smoothness loss with a known clean count) and prints one JSON line.
Nothing in a run uses it: it lives here, outside the package.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from benchmarks._setup import RunSettings, build_run, synthetic_batches
from benchmarks.training_paths import lightning_fit, plain_fit

#: Tensor -> Python conversions: on a GPU each waits for every queued kernel.
_READBACKS = {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "cpu"}
#: Ops whose output size depends on the data: the host must read a count back from the device.
_DATA_DEPENDENT = {"nonzero", "unique", "masked_select", "argwhere", "unique_consecutive"}
#: Factories that copy host data to a device (`torch.tensor(v, device=cuda)` is a blocking copy).
_HOST_TO_DEVICE = {"tensor", "as_tensor"}

_TORCH_DIR = str(Path(torch.__file__).resolve().parent)


def _has_bool_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, Tensor) and i.dtype == torch.bool for i in items)


def _sync_kind(func: Any, args: tuple, kwargs: Mapping[str, Any]) -> str | None:
    """Which kind of host sync `func(*args, **kwargs)` causes on a GPU, or None if it does not."""
    name = getattr(func, "__name__", "")
    if name in _READBACKS:
        return f"readback .{name.strip('_')}()"
    if name in _DATA_DEPENDENT:
        return f"data-dependent {name}"
    if name in ("__getitem__", "__setitem__") and len(args) > 1 and _has_bool_index(args[1]):
        return f"boolean-mask {name.strip('_')}"
    if name in _HOST_TO_DEVICE and kwargs.get("device") is not None:
        return f"host->device torch.{name}(..., device=)"
    return None


def _call_site(skip_dirs: tuple[str, ...]) -> str:
    """`path:line (function)` of the innermost frame outside torch, above the audit's own two."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(skip_dirs):
            short = filename.split("site-packages/")[-1]
            with suppress(ValueError):
                short = str(Path(filename).resolve().relative_to(Path.cwd()))
            return f"{short}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "<unknown>"


class HostSyncAudit(TorchFunctionMode):
    """Counts Python-level calls that force a device->host sync on a GPU, by kind and call site.

    It works on CPU too (nothing actually waits there, but the same calls would on a GPU), which is how the
    benchmarks check "no per-step syncs beyond the logging interval" on a machine without one. Blind to
    syncs made inside C++ kernels and inside compiled graphs; audit an uncompiled model. Slow: audit a few
    steps of a tiny model, never a timed run. Toggle `recording` to count only a window.
    """

    def __init__(self, skip_dirs: tuple[str, ...] = (_TORCH_DIR,)) -> None:
        super().__init__()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.recording = True
        self._skip_dirs = skip_dirs

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Mapping[str, Any] | None = None):
        kwargs = kwargs or {}
        if self.recording:
            kind = _sync_kind(func, args, kwargs)
            if kind is not None:
                self.counts[(kind, _call_site(self._skip_dirs))] += 1
        return func(*args, **kwargs)

    def per_step(self, steps: int) -> list[dict[str, Any]]:
        """Sites sorted by frequency: `{"kind", "site", "per_step"}` (1.0 = every step, 0.1 = every 10th)."""
        rows = [{"kind": k, "site": s, "per_step": n / max(steps, 1)} for (k, s), n in self.counts.items()]
        return sorted(rows, key=lambda r: (-r["per_step"], r["site"]))


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


def smoke() -> dict[str, Any]:
    """The audit's own kinds, and the syncs of the library's pieces meant to make none (or one, when the host cannot
    know a count): `{"ok": bool, ...}` with what each check found."""
    from adv_smooth.defenses.base import TrainBatch
    from adv_smooth.defenses.smoothness import LaplacianSmoothness
    from adv_smooth.lightning.metrics import Accuracy

    x = torch.arange(4.0)
    with HostSyncAudit() as found:
        x.sum().item()
        _ = x[x > 1]
        torch.tensor(3, device="cpu")
        torch.full((), 3, device="cpu")  # a fill: no copy, not a sync
        _ = x * 2
    kinds = sorted(k for k, _ in found.counts)
    sites_here = all(Path(__file__).name in site for _, site in found.counts)

    g = torch.Generator().manual_seed(0)
    metric = Accuracy()
    with HostSyncAudit() as accuracy:
        for n in (13, 8, 21):
            logits, targets = torch.randn(n, 7, generator=g), torch.randint(0, 7, (n,), generator=g)
            metric.update(logits, targets, torch.rand(n, generator=g) < 0.6)

    # The smoothness loss: no sync when the clean count is known on the host, one (however many taps) when not.
    n, classes = 8, 3
    taps = [torch.rand(n, 2, 2, 2) for _ in range(5)]
    unknown = TrainBatch(torch.zeros(n, 3, 2, 2), torch.arange(n) % classes, torch.arange(n) >= 3, torch.ones(n))
    smooth, losses = {}, {}
    for name, batch in (("unknown", unknown), ("known", unknown.replace(clean_count=5))):
        with HostSyncAudit() as audit:
            losses[name] = LaplacianSmoothness(m=2).loss_terms(batch, torch.zeros(n, classes), taps)["smooth"]
        smooth[name] = sum(audit.counts.values())
    expected_kinds = ["boolean-mask getitem", "host->device torch.tensor(..., device=)", "readback .item()"]
    result = {
        "kinds": kinds,
        "sites_here": sites_here,
        "accuracy_update_syncs": sum(accuracy.counts.values()),
        "smoothness_syncs": smooth,
        "smoothness_same_loss": bool(torch.equal(losses["known"], losses["unknown"])),
    }
    result["ok"] = (
        kinds == expected_kinds
        and sites_here
        and result["accuracy_update_syncs"] == 0
        and smooth == {"unknown": 1, "known": 0}
        and result["smoothness_same_loss"]
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="check the audit and the sync-free pieces (CPU, seconds)")
    args = parser.parse_args(argv)
    if not args.smoke:
        parser.error("the audit of the training paths runs in `python -m benchmarks.training`; here: --smoke")
    result = smoke()
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
