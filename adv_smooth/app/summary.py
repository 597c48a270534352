"""The short table printed at the end of a run: clean accuracy and the robustness curve per attack.

The validation accuracy is the last epoch's, the test accuracy is that of the best-on-validation
checkpoint, often another epoch: each line says which epoch (counted from 1) its figure belongs to.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from adv_smooth.utils.text import counted


def format_summary(results: dict[str, Any]) -> str:
    choices = results.get("choices", {})
    head = " | ".join(
        [choices[k] for k in ("dataset", "model", "defense") if k in choices]
        + ([counted(results["epochs"], "epoch")] if results.get("epochs") is not None else [])
        + [f"{results.get('wall_time_s')} s"]
    )
    metrics = {**results.get("fit", {}), **results.get("metrics", {})}
    lines = [head]
    for stage in ("val", "test"):
        if f"{stage}/acc" in metrics:
            lines.append(f"{stage} accuracy: {100 * metrics[f'{stage}/acc']:.2f} %{_which(results, stage)}")
    if "images" in (results.get("test_subset") or {}):  # eval.test_subset: every test figure is on these images
        lines.append(f"test figures on {results['test_subset']['images']}")
    robustness = results.get("robustness", {}).get("test")
    if robustness:
        lines += robustness_table(robustness)
    for warning in results.get("honesty", {}).get("warnings", []):
        lines.append(f"WARNING {warning['message']}")
    bar = "-" * max(len(line) for line in lines)
    return "\n".join([bar, *lines, bar])


def ensemble_summary(results: dict[str, Any]) -> str:
    """Two lines for the terminal: the ensemble's clean accuracy beside its members', and what attacking it cost."""
    members = [m["metrics"].get("test/acc", float("nan")) for m in results["members"]]
    shown = " / ".join(f"{100 * a:.2f}" for a in members)
    mean = 100 * sum(members) / len(members)
    return (
        f"ensemble of {len(members)}: clean accuracy {100 * results['metrics'].get('test/acc', float('nan')):.2f} % "
        f"(members {shown} %, mean {mean:.2f} %; each member's numbers under members/<i>/ and in results.json)\n"
        f"cost: {results['ensemble']['note']}"
    )


def written_to(directory: Path) -> str:
    """The line after a run's summary: where its results went and how to open its figures."""
    from adv_smooth.lightning.robustness_callback import FIGURE_FILE

    parts = [f"results: {directory / 'results.json'}"]
    figure = (directory / FIGURE_FILE).is_file()
    if figure:
        parts.append(f"accuracy vs SNR: {directory / FIGURE_FILE}")
    if (directory / "tensorboard").is_dir():
        where = " (IMAGES tab, test/robustness_vs_snr)" if figure else ""
        parts.append(f"TensorBoard{where}: tensorboard --logdir {shlex.quote(str(directory / 'tensorboard'))}")
    return "; ".join(parts)


def sweep_line(sweep_dir: str, completed: int, jobs: int) -> str:
    """A sweep's last line: where its jobs are and the command that turns them into tables and plots."""
    return (
        f"sweep done: {completed} of {jobs} jobs completed in {sweep_dir}; tables and plots: "
        f"python -m adv_smooth.report {shlex.quote(sweep_dir)}"
    )


def _which(results: dict[str, Any], stage: str) -> str:
    """` (epoch N, the last)` / ` (epoch N's weights, the best on validation)`, when the run says so."""
    epochs, best = results.get("epochs"), results.get("best_epoch")
    trained = isinstance(epochs, int) and epochs > 0
    if stage == "val":
        return f" (epoch {epochs}, the last)" if trained else ""
    if results.get("tested_checkpoint", results.get("best_checkpoint")) == "":  # tested the final weights
        return f" (weights of epoch {epochs}, the last)" if trained else ""
    return f" (weights of epoch {best + 1}, the best on validation)" if isinstance(best, int) else ""


def robustness_table(robustness: dict[str, Any]) -> list[str]:
    """Accuracy per attack and SNR level (fixed-budget attacks in their own column), the worst case last; a
    cascade's rows are cumulative, marked so."""
    attacks = robustness.get("attacks", {})
    keys = sorted({k for entry in attacks.values() for k in entry["acc"] if k != "fixed"}, key=lambda k: -float(k[3:]))
    fixed = any("fixed" in entry["acc"] for entry in attacks.values())
    header = f"{'test acc (%)':<14}{'clean':>8}" + "".join(f"{k[3:] + ' dB':>9}" for k in keys)
    header += f"{'fixed':>9}" if fixed else ""
    cascade = bool(robustness.get("cascade"))
    # A cascade row is cumulative (`Records.correct`): "+ name" reads "and this attack too".
    rows = [(f"+ {name}" if cascade and i else name, entry["acc"]) for i, (name, entry) in enumerate(attacks.items())]
    if "worst" in robustness:
        rows.append(("worst", robustness["worst"]["acc"]))
    lines = [header]
    for name, acc in rows:
        cells = [acc.get(k) for k in keys] + ([acc.get("fixed")] if fixed else [])
        lines.append(
            f"{name:<14}{100 * robustness['clean_acc']:>8.2f}"
            + "".join(f"{'-':>9}" if v is None else f"{100 * v:>9.2f}" for v in cells)
        )
    if cascade and len(attacks) > 1:
        lines.append("cascade: each row is robust after its attack and every attack above it")
    lines += _certified_rows(robustness.get("certified"), keys, fixed)
    for name, entry in attacks.items():
        if "min_snr" in entry:
            lines.append(f"{name}: median minimal adversarial SNR {entry['min_snr']['median_db']:.2f} dB")
    return lines


def _certified_rows(certified: dict[str, Any] | None, keys: list[str], fixed: bool) -> list[str]:
    """The certified accuracy of the smoothed classifier (`eval=certified`) under the attacks' rows: a lower bound
    where theirs are upper bounds, of another classifier (the smoothed one; its clean column is its own)."""
    if not certified:
        return []
    cells = [certified["acc"].get(k) for k in keys] + ([None] if fixed else [])
    row = f"{'certified':<14}{100 * certified['smoothed_clean_acc']:>8.2f}"
    row += "".join(f"{'-':>9}" if v is None else f"{100 * v:>9.2f}" for v in cells)
    sigma = (
        f"sigma {certified['sigma']:g}"
        if certified.get("sigma") is not None
        else f"sigma at {certified['sigma_snr']:g} dB"
    )
    note = (
        f"certified: the smoothed classifier ({sigma}, n={certified['n']}, alpha={certified['alpha']:g}), a lower "
        f"bound; {100 * certified['abstain']:.1f} % abstained"
    )
    rows = [row]
    if "empirical_acc" in certified:  # the same classifier attacked: the upper bound beside the certified one
        cells = [certified["empirical_acc"].get(k) for k in keys] + ([None] if fixed else [])
        attacked = f"{'smoothed PGD':<14}{100 * certified['smoothed_clean_acc']:>8.2f}"
        rows.append(attacked + "".join(f"{'-':>9}" if v is None else f"{100 * v:>9.2f}" for v in cells))
    check = certified.get("check")
    if check:
        note += f"; PGD on it inside the radii broke {check['broken']} of {check['checked']} certificates"
        note += " (must be 0 up to alpha)"
    return [*rows, note]  # its honesty warnings are the run's own (`honesty.warnings`), printed below the table
