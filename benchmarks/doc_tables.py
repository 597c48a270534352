"""The benchmark tables the docs quote, generated from the committed JSON in benchmarks/results/.

A docs page holds each table between `<!-- table: NAME -->` and `<!-- /table -->`; tests/docs/test_docs_numbers.py
regenerates it here and fails when the page and the JSON disagree. `python -m benchmarks.doc_tables` prints them.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

CURVE_ROWS = [
    ("fgsm", "FGSM (L-inf)"),
    ("pgd", "PGD-10 (L-inf)"),
    ("apgd", "APGD-100 (L-inf)"),
    ("apgd_l2", "APGD-100 (L2)"),
    ("fmn_l2", "FMN minimal-SNR curve (L2)"),
]
BASELINE_ROWS = [
    ("vanilla", "vanilla"),
    ("fgsm", "FGSM training (`adv`'s recipe)"),
    ("pgd", "PGD training (`pgd`'s)"),
    ("trades", "TRADES, β = 6 (`trades`'s)"),
]


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def curves_table() -> str:
    """benchmarks/results/curves.json: accuracy per attack and SNR level, and the per-image worst case."""
    data = _load("curves")
    levels = [int(level) for level in data["levels_db"]]
    attacks = data["summary"]["attacks"]
    head = "| accuracy (%) | " + " | ".join(f"{level} dB" for level in levels) + " |"
    lines = [head, "|---|" + "---|" * len(levels)]
    rows = [(label, attacks[key]["acc"]) for key, label in CURVE_ROWS]
    rows.append(("worst of all", data["summary"]["worst"]["acc"]))
    for label, acc in rows:
        lines.append(f"| {label} | " + " | ".join(_pct(acc[f"snr{level}"]) for level in levels) + " |")
    return "\n".join(lines)


def baselines_table() -> str:
    """benchmarks/results/baselines_digits.json: clean and PGD-10 accuracy per training, one column per seed."""
    data = _load("baselines_digits")
    seeds = [str(seed) for seed in data["seeds"]]
    lines = [
        f"| training (seeds {' / '.join(seeds)}) | clean % | PGD-10 at 14 dB % | PGD-10 at 11 dB % |",
        "|---|---|---|---|",
    ]
    for key, label in BASELINE_ROWS:
        runs = data["results"][key]
        cells = [" / ".join(_pct(runs[seed][metric]) for seed in seeds) for metric in ("clean", "pgd_14db", "pgd_11db")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _levels(acc: dict) -> list[int]:
    return sorted((int(k.removeprefix("snr")) for k in acc), reverse=True)


def default_band_table() -> str:
    """benchmarks/results/gpu_evidence.json: the default digits job (trainer=gpu) for each seed."""
    runs = _load("gpu_evidence")["default_job"]
    seeds = sorted(runs, key=int)
    levels = _levels(runs[seeds[0]]["worst"])
    lines = [
        "| seed | clean % | " + " | ".join(f"worst {level} dB %" for level in levels) + " | best epoch (0-based) |",
        "|---|---|" + "---|" * len(levels) + "---|",
    ]
    for seed in seeds:
        run = runs[seed]
        cells = [_pct(run["worst"][f"snr{level}"]) for level in levels]
        lines.append(f"| {seed} | {_pct(run['test_acc'])} | " + " | ".join(cells) + f" | {run['best_epoch']} |")
    return "\n".join(lines)


def sandwich_table() -> str:
    """benchmarks/results/gpu_evidence.json: eval=certified on the whole digits test split, the three curves."""
    data = _load("gpu_evidence")["certified"]["evaluate"]
    levels = _levels(data["acc"])
    lines = ["| accuracy (%) | " + " | ".join(f"{level} dB" for level in levels) + " |", "|---|" + "---|" * len(levels)]
    rows = [
        ("certified, smoothed classifier (lower bound)", data["acc"]),
        ("PGD on the smoothed classifier (upper bound)", data["empirical_acc"]),
        ("worst attack on the base network", data["base_network"]["worst"]),
    ]
    for label, acc in rows:
        lines.append(f"| {label} | " + " | ".join(_pct(acc[f"snr{level}"]) for level in levels) + " |")
    check = data["check"]
    lines.append("")
    lines.append(
        f"{data['images']} test images, σ = {data['sigma']}, n = {data['n']}, α = {data['alpha']}; "
        f"{data['forward_passes']:,} forward passes; PGD inside the certified radii broke {check['broken']} of "
        f"{check['checked']} certificates."
    )
    return "\n".join(lines)


def autoattack_table() -> str:
    """benchmarks/results/autoattack*.json: eval=autoattack beside pyautoattack, same network, images, budget."""
    lines = ["| threat model | images | ours % | AutoAttack % | ours s | AutoAttack s |", "|---|---|---|---|---|---|"]
    for name, label in (("autoattack", "Linf 8/255"), ("autoattack_l2", "L2 0.5")):
        d = _load(name)
        ours, ref = d["ours"], d["autoattack"]
        lines.append(
            f"| {label} | {d['settings']['images']} | {100 * ours['robust_acc']:.2f} | {100 * ref['robust_acc']:.2f} "
            f"| {ours['wall_s']:.1f} | {ref['wall_s']:.1f} |"
        )
    return "\n".join(lines)


def default_band_cpu_table() -> str:
    """benchmarks/results/default_band_cpu.json: the default recipe at CI size, per seed, and the band."""
    data = _load("default_band_cpu")
    keys = ["clean", *sorted((k for k in data["band"] if k != "clean"), key=lambda k: -int(k.removeprefix("snr")))]
    names = ["clean %", *(f"worst {k.removeprefix('snr')} dB %" for k in keys[1:])]
    lines = ["| seed | " + " | ".join(names) + " |", "|---|" + "---|" * len(keys)]
    for seed, run in data["runs"].items():
        cells = [_pct(run["clean"] if k == "clean" else run["worst"][k]) for k in keys]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    band = [f"{_pct(data['band'][k][0])}–{_pct(data['band'][k][1])}" for k in keys]
    lines.append("| band | " + " | ".join(band) + " |")
    return "\n".join(lines)


DEFAULT_NAMES = {
    "cosine": "schedule: cosine instead of step (x0.01 at 60 %)",
    "no_val_carve": "no validation carve (all images, last weights)",
    "reflect": "crop padding: reflect (now the default) instead of zeros",
    "plain": "all three (a plain loop's recipe)",
}


def defaults_effect_table() -> str:
    """benchmarks/results/defaults_effect.json: each default's effect (variant minus base, paired by seed), in
    points, mean ± standard deviation over the seeds, at each length."""
    data = _load("defaults_effect")
    lengths = list(data["epochs"])
    levels = [k for k in next(iter(data["epochs"][lengths[0]]["effect_points"].values())) if k != "clean"]
    figures = ["clean", *sorted(levels, key=lambda k: -int(k.removeprefix("snr")))]
    names = {"clean": "clean"} | {k: f"worst {k.removeprefix('snr')} dB" for k in figures if k != "clean"}
    head = [f"{names[k]}, {e} ep." for e in lengths for k in figures]
    lines = ["| change from the base recipe | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    base = [
        f"{statistics.fmean(run[k] for run in data['epochs'][e]['runs']['base'].values()) * 100:.1f} %"
        for e in lengths
        for k in figures
    ]
    lines.append("| base recipe (mean, not a change) | " + " | ".join(base) + " |")
    for variant, label in DEFAULT_NAMES.items():
        cells = []
        for e in lengths:
            effect = data["epochs"][e]["effect_points"][variant]
            cells += [f"{effect[k]['mean']:+.1f} ± {effect[k]['sd']:.1f}" for k in figures]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


TABLES = {
    "curves": curves_table,
    "baselines_digits": baselines_table,
    "default_band": default_band_table,
    "sandwich": sandwich_table,
    "autoattack": autoattack_table,
    "default_band_cpu": default_band_cpu_table,
    "defaults_effect": defaults_effect_table,
}
_BLOCK = re.compile(r"<!-- table: (?P<name>[\w-]+) -->\n(?P<body>.*?)\n<!-- /table -->", re.DOTALL)


def tables_in(text: str) -> dict[str, str]:
    """The generated tables a page holds: name -> the table as the page has it."""
    return {m["name"]: m["body"].strip() for m in _BLOCK.finditer(text)}


def check(docs: Path) -> list[str]:
    """What disagrees: a page's table that differs from its JSON or has no generator, a table no page shows."""
    problems, seen = [], set()
    for page in sorted(docs.rglob("*.md")):
        for name, table in tables_in(page.read_text()).items():
            seen.add(name)
            if name not in TABLES:
                problems.append(f"{page}: no generator for table {name!r}")
            elif table != TABLES[name]():
                problems.append(f"{page}: table {name!r} disagrees with its JSON")
    problems += [f"no page shows table {name!r}" for name in sorted(set(TABLES) - seen)]
    return problems


def main(argv: list[str] | None = None) -> None:
    """`python -m benchmarks.doc_tables`: every table; `--check DOCS_DIR`: exit 1 naming each table that disagrees."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--check"]:
        problems = check(Path(argv[1]) if len(argv) > 1 else Path("docs"))
        for problem in problems:
            print(problem, file=sys.stderr)
        sys.exit(1 if problems else 0)
    for name, make in TABLES.items():
        print(f"<!-- table: {name} -->\n{make()}\n<!-- /table -->\n")


if __name__ == "__main__":
    main()
