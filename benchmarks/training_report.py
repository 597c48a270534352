"""The training benchmark's targets (limits per device) and its printed report; numbers come from `training.py`."""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch

from benchmarks import components, host_syncs
from benchmarks._timing import format_table, paired_overhead, target_status

#: name -> (metric, case, baseline, limit). Metric "overhead": time ratio - 1; "ratio": time ratio.
TARGETS = {
    "cpu": {
        "lightning overhead (all cases)": ("lightning", None, None, 0.05),
        "smoothness m=2, 10 classes": ("overhead", "smooth_m2", "vanilla", 0.15),
        "parseval": ("overhead", "parseval", "vanilla", 0.10),
        "adversarial training": ("ratio", "adv", "vanilla", 2.2),
    },
    # The GPU limits are not restated here; the rows say "not measured" until a GPU run fills them.
    "cuda": {
        "lightning overhead (all cases)": ("lightning", None, None, None),
        "smoothness m=2, 10 classes": ("overhead", "smooth_m2", "vanilla", None),
        "parseval": ("overhead", "parseval", "vanilla", None),
        "adversarial training": ("ratio", "adv", "vanilla", None),
    },
}
GPU_COMMAND = (
    "python -m benchmarks.training --device cuda --width 64 --batch-size 512 --precision bf16-mixed "
    "--channels-last --compile"
)


def pooled_lightning_overhead(cases: dict[str, Any]) -> dict[str, Any]:
    """Lightning's time over the plain loop's, summed over every case, per repetition (pairs share the machine).

    The target's number. Taking the worst single case instead would report noise: with a few timed steps a
    case's median moves by several percent between runs, and the largest of ten such medians sits above the
    true overhead even when that is zero. The per-case values stay in the table (and `worst_case` in the JSON).
    """
    per_rep = {
        p: [sum(v) for v in zip(*(c[p]["wall_s"]["values"] for c in cases.values()))] for p in ("lightning", "plain")
    }
    return paired_overhead(per_rep["lightning"], per_rep["plain"])


def evaluate_targets(cases: dict[str, Any], device: str) -> list[dict[str, Any]]:
    """Each target on the device measured, and every other device's targets as "not measured"."""
    rows = []
    for dev, targets in TARGETS.items():
        for name, (metric, case, baseline, limit) in targets.items():
            row: dict[str, Any] = {"device": dev, "target": name, "metric": metric, "limit": limit}
            value, where = None, None
            if dev == torch.device(device).type:
                if metric == "lightning":
                    if cases:
                        pooled = pooled_lightning_overhead(cases)
                        value, where = pooled["median"], "all cases"
                        worst = max(cases, key=lambda c: cases[c]["lightning_overhead"]["median"])
                        row["worst_case"] = {"case": worst, "value": cases[worst]["lightning_overhead"]["median"]}
                elif case in cases and baseline in cases:
                    ratio = cases[case]["plain"]["vs_baseline"]["median"]  # defense cost, Lightning-free
                    value, where = (ratio - 1 if metric == "overhead" else ratio), case
            row.update(value=value, case=where, status=target_status(value, limit))
            rows.append(row)
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:+.1f}%"


def format_report(r: dict[str, Any]) -> str:
    s = r["settings"]
    header = (
        "case",
        "classes",
        "path",
        "images/s",
        "spread",
        "CPU-s/step",
        "Lightning vs plain",
        "vs baseline",
        "(CPU-s)",
    )
    rows = [header]
    for name, c in r["cases"].items():
        for p in ("plain", "lightning"):
            d = c[p]
            rows.append(
                (
                    name if p == "plain" else "",
                    str(c["classes"]) if p == "plain" else "",
                    p,
                    f"{d['images_per_s']['median']:.1f}",
                    f"{d['images_per_s']['spread_pct']:.0f}%",
                    f"{d['cpu_s']['median'] / s['steps']:.3f}",
                    _pct(c["lightning_overhead"]["median"]) if p == "lightning" else "",
                    f"{d['vs_baseline']['median']:.2f}x {c['baseline']}" if name != c["baseline"] else "-",
                    f"{d['vs_baseline_cpu']['median']:.2f}x" if name != c["baseline"] else "",
                )
            )
    lines = [
        f"training throughput: width {s['width']}, batch {s['batch_size']}, {s['steps']} timed steps after "
        f"{s['warmup']} warm-up, {s['reps']} interleaved reps, {s['device']}, {s['precision']}, "
        f"channels_last={s['channels_last']}, compile={s['compile']}, logger={s['logger']}",
        format_table(rows),
        "Lightning's epoch end (metric reduction, logger flush) is once per epoch, outside the per-step window: "
        f"median {statistics.median(c['lightning']['epoch_end_s']['median'] for c in r['cases'].values()):.3f} s",
        "",
    ]
    trows = [("target", "device", "limit", "measured", "status")]
    for t in r["targets"]:
        unit = (lambda v: f"{v:.2f}x") if t["metric"] == "ratio" else _pct
        limit = "-" if t["limit"] is None else unit(t["limit"]).replace("+", "<= ")
        if t["metric"] == "ratio" and t["limit"] is not None:
            limit = f"<= {t['limit']:.2f}x"
        value = "not measured" if t["value"] is None else f"{unit(t['value'])} ({t['case']})"
        if "worst_case" in t:
            value += f"; worst case {_pct(t['worst_case']['value'])} ({t['worst_case']['case']})"
        trows.append((t["target"], t["device"], limit, value, t["status"]))
    lines += [format_table(trows), ""]
    if "components" in r:
        lines += [components.format_rows(r["components"]), ""]
    if "host_syncs" in r:
        lines += [*host_syncs.format_lines(r["host_syncs"]), ""]
    load = r["load_average_1min_before_after"]
    lines.append(
        f"threads {r['machine']['threads']} on {r['machine']['cpu_count']} CPUs, "
        f"load avg before/after {load[0]:.1f}/{load[1]:.1f}; GPU: {GPU_COMMAND}"
    )
    return "\n".join(lines)
