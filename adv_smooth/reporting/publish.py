"""What the report adds for publication, in one place: intervals, paired tests, the study beside the runs,
LaTeX, CSV of every number behind them, the minimal-SNR figures.

`annotate` runs before the Markdown is rendered (it fills the cells' intervals and marks and the tables'
captions) and returns the extra sections; `write` writes the files. Kept out of app/report_run.py so the
entry point stays plumbing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adv_smooth.reporting import intervals, latex, paired, reference
from adv_smooth.reporting.min_snr import plot_min_snr
from adv_smooth.reporting.table import Group, Table
from adv_smooth.utils.io import write_text_atomic


@dataclass
class Publication:
    labels: list[str]
    outcome: paired.Outcome
    sides: list[reference.Side] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)  # Markdown, after the main tables


def annotate(
    groups: list[Group], tables: list[Table], labels: list[str], baseline: str | None, which: str | None
) -> Publication:
    """Intervals and marks into the tables; the paired-difference and side-by-side sections."""
    intervals.annotate(tables)
    index, note = paired.pick_baseline(groups, labels, baseline) if groups else (None, "")
    outcome = paired.compare(tables, index)
    publication = Publication(labels, outcome)
    blocks = [paired.paired_markdown(t, outcome.comparisons.get(t.attack, []), labels) for t in tables]
    if any(blocks) or note:
        publication.sections += ["## Paired comparisons with the baseline", ""]
        publication.sections += [note, ""] if note else []
        publication.sections += [b + "\n" for b in blocks if b]
    if which is not None:
        sides, notes = reference.side_by_side(which, groups, tables)
        publication.sides = sides
        publication.sections += ["## The study's published numbers", "", *notes]
        publication.sections += ["\n" + reference.side_markdown(s, labels) for s in sides]
    return publication


def _csv(rows: list[dict[str, Any]], empty_header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else empty_header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write(
    publication: Publication, groups: list[Group], tables: list[Table], extras: list[str], out: Path, plots: bool
) -> list[Path]:
    """tables.tex + report.tex, intervals.csv, comparisons.csv, reference.csv (with --reference), min_snr_*."""
    files = [
        write_text_atomic(out / "tables.tex", latex.tables_latex(tables, extras) + "\n"),
        write_text_atomic(out / "report.tex", latex.document("tables")),
        write_text_atomic(out / "intervals.csv", _csv(intervals.per_run_rows(tables), ["attack", "group", "job"])),
        write_text_atomic(
            out / "comparisons.csv",
            _csv(paired.comparison_rows(publication.outcome, tables, publication.labels), ["attack", "row", "column"]),
        ),
    ]
    if publication.sides:
        rows = reference.side_rows(publication.sides, publication.labels)
        files.append(write_text_atomic(out / "reference.csv", _csv(rows, ["table", "study_row", "row", "column"])))
    if plots and groups:
        files += plot_min_snr(groups, publication.labels, out, tables[0].split if tables else "test")
    return files
