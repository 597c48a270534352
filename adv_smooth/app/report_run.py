"""`python -m adv_smooth.report SWEEP_DIR [MORE_DIRS ...] [--out DIR]`: the report's tables from a sweep.

Reads every job's results.json below the given directories, groups the jobs by everything but the seed,
and prints, per attack, a table shaped like the report's (defense, beta, gamma, m, clean, 50, 45, 40,
33 dB) with mean ± std over seeds and n. Writes report.md, report.csv and PNG plots (accuracy vs SNR,
training-loss curves) to --out (default: <first dir>/report); runs evaluated with eval=certified or eval=natural
add their sections and figures (reporting/bounds.py: certified lower beside empirical upper bounds, the
adversary beside natural noise at equal SNR). Jobs that failed or have no results.json
yet are listed under the tables, never silently dropped; rows where an honesty check fired are marked.
For publication (reporting/publish.py): 95 % confidence intervals in every cell, paired tests against
--baseline marked ↑/↓, tables.tex + report.tex (booktabs), every figure also as PDF, the minimal-SNR
distributions, and with --reference the study's published numbers beside the matching rows.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from adv_smooth.reporting import bounds, publish, reference, robustbench
from adv_smooth.reporting.jobs import COMPLETED, Job, find_jobs
from adv_smooth.reporting.plots import plot_accuracy_vs_snr, plot_training_curves, training_curves
from adv_smooth.reporting.table import Group, Table, build_tables, group_jobs, table_markdown, tables_csv
from adv_smooth.utils.errors import UserError
from adv_smooth.utils.io import write_text_atomic
from adv_smooth.utils.plotting import companions
from adv_smooth.utils.text import counted


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m adv_smooth.report", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="sweep directories (multirun/<date>/<time>) or run directories")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: <first dir>/report)")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="which split's metrics (default test)")
    parser.add_argument(
        "--metric",
        choices=("acc", "cumulative_acc"),
        default="acc",
        help="per-level accuracy, or cumulative (correct clean and at every weaker level)",
    )
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument(
        "--baseline",
        default=None,
        help="the row the paired tests compare every other row with: its label as in the plots' legend, or a "
        "defense with a single row (default: vanilla, when there is one)",
    )
    parser.add_argument(
        "--reference",
        nargs="?",
        const=reference.AUTO,
        choices=(reference.AUTO, *reference.names()),
        default=None,
        help="put the study's published numbers beside the rows whose settings match (alone: the tables of "
        "the runs' datasets; or name a table to compare with it whatever the dataset)",
    )
    parser.add_argument(
        "--robustbench",
        action="store_true",
        help="also write RobustBench's model-info JSON per job (robustbench/<dataset>/<Linf|L2>/<job>.json); only "
        "for eval=autoattack / eval=autoattack_l2 unchanged, on the whole test split",
    )
    parser.add_argument(
        "--transfer",
        nargs="?",
        const=33.0,
        type=float,
        default=None,
        metavar="SNR_DB",
        help="also the transfer matrix: PGD crafted on each job's network at this SNR (default 33 dB), scored by "
        "every other; a transfer beating a network's own white-box attack is flagged (gradient masking)",
    )
    parser.add_argument("--transfer-images", type=int, default=500, help="test images for --transfer (default 500)")
    parser.add_argument("--transfer-norm", choices=("linf", "l2"), default="linf", help="--transfer's PGD norm")
    return parser


def _relative(path: Path, roots: list[Path]) -> str:
    for root in roots:
        try:
            return str(path.relative_to(root.parent)) if path != root else str(path)
        except ValueError:
            continue
    return str(path)


def not_in_tables(jobs: list[Job], roots: list[Path]) -> list[str]:
    """One line per job that failed or has no results.json yet, with its overrides and the reason."""
    lines = []
    for job in jobs:
        if job.status == COMPLETED:
            continue
        overrides = " ".join(job.overrides) or "(no overrides recorded)"
        lines.append(f"- {_relative(job.path, roots)} [{job.status}] {overrides}: {job.error}")
    return lines


def render(
    jobs: list[Job],
    groups: list[Group],
    tables: list[Table],
    extras: list[str],
    roots: list[Path],
    sections: list[str] | None = None,
) -> str:
    """The whole Markdown report: a summary line, the tables, `sections` (paired tests, the study), jobs left out."""
    done = sum(j.status == COMPLETED for j in jobs)
    parts = [
        "# Sweep report",
        "",
        f"Sources: {', '.join(str(r) for r in roots)}. Jobs: {len(jobs)} found, {done} completed, "
        f"{counted(len(groups), 'group')} (jobs equal in everything but the seed).",
    ]
    done_jobs = [j for j in jobs if j.status == COMPLETED and j.results.get("selected_on")]
    chosen = Counter(str(j.results["selected_on"]) for j in done_jobs)
    if chosen:  # which validation metric chose the tested weights (robust accuracy for adversarial training)
        metrics = ", ".join(f"{m} ({counted(n, 'job')})" for m, n in sorted(chosen.items()))
        parts.append(f"Tested weights chosen on: {metrics}.")
    if groups and all(c.mean is None for t in tables for r in t.rows for c in r.cells.values()):
        split = tables[0].split
        parts += ["", f"No {split} metrics in any completed job (a search runs with test=false: try --split val)."]
    for table in tables if groups else []:
        parts += ["", table_markdown(table, extras)]
    parts += ["", *sections] if sections else []
    left_out = not_in_tables(jobs, roots)
    if left_out:
        parts += ["", f"### Jobs not in the tables ({len(left_out)})", *left_out]
    return "\n".join(parts) + "\n"


def write_plots(groups: list[Group], tables: list[Table], extras: list[str], out: Path) -> list[Path]:
    labels = [g.label(extras) for g in groups]
    paths = [
        plot_accuracy_vs_snr(t, labels, out / f"accuracy_vs_snr_{t.attack}.png")
        for t in tables
        if t.attack != "none" or any(r.cells["clean"].mean is not None for r in t.rows)
    ]
    curves = [(label, [training_curves(j) for j in g.jobs]) for label, g in zip(labels, groups)]
    loss = plot_training_curves(curves, out / "training_loss.png")
    return companions(paths + ([loss] if loss else []))


def report(
    dirs: list[str],
    out: Path | None = None,
    split: str = "test",
    metric: str = "acc",
    plots: bool = True,
    baseline: str | None = None,
    reference: str | None = None,
    robustbench_export: bool = False,
    transfer: tuple[float, int, str] | None = None,
) -> tuple[str, list[Path]]:
    """Build the report; write report.md, report.csv, the LaTeX, the statistics' CSVs and the figures into
    `out`. Returns (markdown, files). `transfer`: (SNR in dB, images, norm) of the transfer matrix, None: off."""
    jobs = find_jobs(dirs)
    roots = [Path(d) for d in dirs]
    groups, extras = group_jobs(jobs)
    tables = build_tables(groups, split, metric)
    labels = [g.label(extras) for g in groups]
    publication = publish.annotate(groups, tables, labels, baseline, reference)
    sections = [*bounds.sections(groups, labels, split), *publication.sections]
    if transfer is not None:  # loads every network: only when asked
        from adv_smooth.app.transfer_run import transfer_section

        snr_db, images, norm = transfer
        sections += ["", *transfer_section(jobs, roots, images, snr_db, norm)]
    markdown = render(jobs, groups, tables, extras, roots, sections)
    out = out or roots[0] / "report"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory: give a directory to write the report into")
    exports = robustbench.model_infos(jobs) if robustbench_export else []  # refused before anything is written
    files = [write_text_atomic(out / "report.md", markdown)]
    files.append(write_text_atomic(out / "report.csv", tables_csv(tables, extras)))
    if plots and groups:
        files += write_plots(groups, tables, extras, out)
        files += companions(bounds.write_figures(groups, labels, out, split))
    files += companions(publish.write(publication, groups, tables, extras, out, plots))
    files += robustbench.write_model_infos(exports, roots, out)
    return markdown, files


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        markdown, files = report(
            args.dirs,
            args.out,
            args.split,
            args.metric,
            not args.no_plots,
            args.baseline,
            args.reference,
            args.robustbench,
            None if args.transfer is None else (args.transfer, args.transfer_images, args.transfer_norm),
        )
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # --out below a file, no permission, a full disk
        print(f"error: could not write the report: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    print(markdown, end="")
    print("wrote: " + ", ".join(str(f) for f in files))


if __name__ == "__main__":
    main()
