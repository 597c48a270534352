"""The short table printed at the end of a run: clean accuracy and the robustness curve per attack."""

from __future__ import annotations

from typing import Any


def format_summary(results: dict[str, Any]) -> str:
    choices = results.get("choices", {})
    head = " | ".join(
        [choices[k] for k in ("dataset", "model", "defense") if k in choices]
        + ([f"{results['epochs']} epochs"] if results.get("epochs") is not None else [])
        + [f"{results.get('wall_time_s')} s"]
    )
    metrics = {**results.get("fit", {}), **results.get("metrics", {})}
    lines = [head]
    for stage in ("val", "test"):
        if f"{stage}/acc" in metrics:
            lines.append(f"{stage} accuracy: {100 * metrics[f'{stage}/acc']:.2f} %")
    robustness = results.get("robustness", {}).get("test")
    if robustness:
        attacks = robustness["attacks"]
        levels = next(iter(attacks.values()))["levels"] if attacks else []
        header = f"{'test acc (%)':<14}{'clean':>8}" + "".join(f"{f'{s:g} dB':>9}" for s in levels)
        lines.append(header)
        for name, curve in attacks.items():
            row = f"{name:<14}{100 * robustness['clean_acc']:>8.2f}"
            row += "".join(f"{100 * v:>9.2f}" for v in curve["acc"].values())
            lines.append(row)
    for warning in results.get("honesty", {}).get("warnings", []):
        lines.append(f"WARNING {warning['message']}")
    bar = "-" * max(len(line) for line in lines)
    return "\n".join([bar, *lines, bar])
