"""RobustBench's model-info JSON for each job of a report evaluated with AutoAttack's standard version.

`python -m adv_smooth.report DIR --robustbench` writes, per completed job, `robustbench/<dataset>/<Linf|L2>/
<name>.json` with the fields of RobustBench's `model_info` files (`FIELDS`), so a model can be submitted to the
leaderboard, or compared with its entries, without retyping a number. Only an evaluation that *is* the standard one
qualifies: `eval=autoattack` (L-inf) or `eval=autoattack_l2` (L2) with its four attacks and counts unchanged
(`STANDARD`), on the whole test split. Anything else is refused in one line naming the job and what differs, since
a number called "AutoAttack" on a subset or with fewer targets is not comparable with the leaderboard's.

What this tool cannot know (the paper's title, authors, venue, link, the number the paper reported) is written
empty for the author to fill; `reported` is left empty rather than filled with the number measured here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adv_smooth.reporting.jobs import COMPLETED, Job
from adv_smooth.utils.errors import UserError
from adv_smooth.utils.io import write_text_atomic

FIELDS = (
    "link",
    "name",
    "authors",
    "additional_data",
    "number_forward_passes",
    "dataset",
    "venue",
    "architecture",
    "eps",
    "clean_acc",
    "reported",
    "autoattack_acc",
    "footnote",
    "unreliable",
)
PRESETS = {"autoattack": "Linf", "autoattack_l2": "L2"}  # eval preset -> RobustBench's threat model
LEADERBOARDS = ("cifar10", "cifar100", "imagenet")  # RobustBench's datasets
# the standard version's attacks: (target class's tail, the options that make it standard)
STANDARD = {
    "apgd_ce": ("APGD", {"loss": "ce", "targets": 0, "steps": 100, "restarts": 1}),
    "apgd_t": ("APGD", {"loss": "dlr", "targets": 9, "steps": 100, "restarts": 1}),
    "fab_t": ("FAB", {"targets": 9, "steps": 100, "restarts": 1}),
    "square": ("Square", {"queries": 5000}),
}


def _not_standard(job: Job) -> str | None:
    """Why `job`'s test evaluation is not AutoAttack's standard version on the whole test split, or None."""
    preset = (job.results.get("choices") or {}).get("eval")
    if preset not in PRESETS:
        return f"eval={preset} is not eval=autoattack or eval=autoattack_l2"
    attacks = ((job.config.get("eval") or {}).get("attacks")) or {}
    if set(attacks) != set(STANDARD):
        return f"its attacks {sorted(attacks)} are not the standard four {sorted(STANDARD)}"
    norm = "linf" if PRESETS[preset] == "Linf" else "l2"
    for label, (cls, options) in STANDARD.items():
        attack = attacks[label]
        if not str(attack.get("_target_", "")).endswith(f".{cls}"):
            return f"eval.attacks.{label} is {attack.get('_target_')}, not {cls}"
        changed = {k: attack.get(k) for k, v in options.items() if attack.get(k) != v}
        if changed or attack.get("norm") != norm or attack.get("budget") != "fixed":
            return f"eval.attacks.{label} differs from the standard version: {changed or attack}"
    if job.results.get("test_subset"):
        return f"it ran on a subset ({job.results['test_subset'].get('images', 'eval.test_subset')})"
    return None


def _percent(value: object) -> str:
    return f"{100 * float(value):.2f}"


def _architecture(config: Mapping[str, Any]) -> str:
    model = config.get("model") or {}
    target = str(model.get("_target_", "")).rsplit(".", 1)[-1] or "unknown"
    if target == "PreActResNet":
        blocks = model.get("blocks") or []
        depth = 2 * sum(blocks) + 2 if blocks else "?"
        return f"PreActResNet-{depth} (width {model.get('width')})"
    return target


def model_info(job: Job) -> tuple[str, str, dict[str, Any]]:
    """(dataset, threat model, RobustBench's model-info fields) of one job; a `UserError` if not standard."""
    why = _not_standard(job)
    if why:
        raise UserError(f"--robustbench: {job.path} is not an AutoAttack standard evaluation: {why}")
    threat = PRESETS[job.results["choices"]["eval"]]
    evaluation = job.config.get("eval") or {}
    section = ((job.results.get("robustness") or {}).get("test")) or {}
    worst = ((section.get("worst") or {}).get("acc") or {}).get("fixed")
    if worst is None or section.get("clean_acc") is None:
        raise UserError(f"--robustbench: {job.path} has no fixed-budget worst case in robustness.test")
    dataset = str((job.results.get("choices") or {}).get("dataset", "unknown"))
    eps = f"{evaluation.get('eps_255'):g}/255" if threat == "Linf" else f"{evaluation.get('radius'):g}"
    footnote = "AutoAttack standard version (APGD-CE, APGD-T, FAB-T, Square) by adv_smooth on the full test split"
    if dataset not in LEADERBOARDS:
        footnote += f"; {dataset} has no RobustBench leaderboard"
    info = {
        "link": "",
        "name": "",
        "authors": "",
        "additional_data": bool((job.config.get("dataset") or {}).get("extra", False)),
        "number_forward_passes": 1,
        "dataset": dataset,
        "venue": "",
        "architecture": _architecture(job.config),
        "eps": eps,
        "clean_acc": _percent(section["clean_acc"]),
        "reported": "",
        "autoattack_acc": _percent(worst),
        "footnote": footnote,
        "unreliable": False,
    }
    return dataset, threat, info


def _file_name(job: Job, roots: list[Path]) -> str:
    for root in roots:
        try:
            relative = job.path.relative_to(root)
            break
        except ValueError:
            continue
    else:
        relative = Path(job.path.name)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(relative.parts) or job.path.name)


Export = tuple[Job, str, str, dict[str, Any]]  # (job, dataset, threat model, model-info fields)


def model_infos(jobs: list[Job]) -> list[Export]:
    """Every completed job's model info; refuses when one of them is not a standard evaluation, or when there is
    none (called before the report writes anything, so a refusal leaves no half-written export)."""
    completed = [j for j in jobs if j.status == COMPLETED]
    if not completed:
        raise UserError("--robustbench: no completed job to export")
    return [(job, *model_info(job)) for job in completed]


def write_model_infos(exports: list[Export], roots: list[Path], out: Path) -> list[Path]:
    """`out/robustbench/<dataset>/<threat model>/<job>.json`, one per export."""
    files = []
    for job, dataset, threat, info in exports:
        path = out / "robustbench" / dataset / threat / f"{_file_name(job, roots)}.json"
        files.append(write_text_atomic(path, json.dumps(info, indent=2) + "\n"))
    return files
