"""The short table printed at the end of a run."""

from __future__ import annotations

from typing import Any


def format_summary(results: dict[str, Any]) -> str:
    rows = [("run", "")]
    for key in ("dataset", "model", "defense"):
        if key in results.get("choices", {}):
            rows.append((key, results["choices"][key]))
    rows += [("epochs", str(results.get("epochs"))), ("wall time", f"{results.get('wall_time_s')} s")]
    metrics = {**results.get("fit", {}), **results.get("metrics", {})}
    for key in sorted(metrics):
        if key.endswith("/acc") and not key.startswith("train/") or key in ("val/acc", "train/acc_epoch"):
            rows.append((key, f"{100 * metrics[key]:.2f} %"))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows[1:]]
    bar = "-" * max(len(line) for line in lines)
    return "\n".join([bar, *lines, bar])
