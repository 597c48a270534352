"""The report's tables as LaTeX (booktabs): best mean per column in bold, significance marks, the caption.

Written twice: `tables.tex`, the table environments alone to `\\input` into a paper, and `report.tex`, a
minimal document around them that compiles on its own (packages: booktabs only), so the tables can be
checked before they go anywhere. Every text that comes from a config (defense names, keys) is escaped.
"""

from __future__ import annotations

import re

from adv_smooth.reporting.paired import BETTER, WORSE
from adv_smooth.reporting.table import Cell, Table

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_SYMBOLS = {
    "β": r"$\beta$",
    "γ": r"$\gamma$",
    "Δ": r"$\Delta$",
    "±": r"$\pm$",
    "–": "--",
    "−": "$-$",
    "≥": r"$\geq$",
    "⚠": "(!)",
}
_MARKS = {BETTER: r"$^{\uparrow}$", WORSE: r"$^{\downarrow}$"}


def escape(text: str) -> str:
    """Plain text (config values, names, captions) safe inside a LaTeX table."""
    out = "".join(_SPECIAL.get(ch, ch) for ch in text)
    for symbol, latex in {**_SYMBOLS, **_MARKS}.items():
        out = out.replace(symbol, latex)
    return out


def best_per_column(table: Table) -> dict[str, float]:
    """The highest mean of each column (several rows may tie: all of them are bold)."""
    best: dict[str, float] = {}
    for column in table.columns:
        means = [round(r.cells[column].mean, 2) for r in table.rows if r.cells[column].mean is not None]
        if means:
            best[column] = max(means)
    return best


def _cell(cell: Cell, bold: bool) -> str:
    if cell.mean is None:
        return "--"
    text = f"{cell.mean:.2f}"
    if bold:
        text = rf"\textbf{{{text}}}"
    if cell.std is not None:
        text += rf" $\pm$ {cell.std:.2f}"
    if cell.interval is not None:
        text += rf" {{\scriptsize [{cell.interval[0]:.1f}, {cell.interval[1]:.1f}]}}"
    return text + _MARKS.get(cell.mark, "")


def table_latex(table: Table, extras: list[str], label: str) -> str:
    """One `table` environment: header rule, one row per group, caption with the method notes."""
    header = [*extras, *table.columns, "n"]  # extras: the label columns (table.group_jobs)
    best = best_per_column(table)
    align = "l" * len(extras) + "r" * (len(table.columns) + 1)
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        r"\small",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(escape(h) if h in (*extras, "n", "clean") else f"{escape(h)} dB" for h in header) + r" \\",
        r"\midrule",
    ]
    for row in table.rows:
        labels = [escape(row.group.labels[c]) for c in extras]
        cells = []
        for column in table.columns:
            cell = row.cells[column]
            bold = cell.mean is not None and column in best and round(cell.mean, 2) == best[column]
            cells.append(_cell(cell, bold))
        lines.append(" & ".join([*labels, *cells, str(len(row.group.jobs))]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    what = "clean accuracy" if table.attack == "none" else f"accuracy under {table.attack} at each SNR"
    caption = (
        f"{table.split.capitalize()} {what} (\\%, mean $\\pm$ sample std over seeds; n = seeds). "
        f"Bold: the best mean of each column. " + " ".join(escape(note) for note in table.notes)
    )
    lines += [rf"\caption{{{caption}}}", rf"\label{{{label}}}", r"\end{table}"]
    return "\n".join(lines)


def tables_latex(tables: list[Table], extras: list[str]) -> str:
    """Every table, for `\\input{tables}`; labels tab:robust-<attack>."""
    return "\n\n".join(table_latex(t, extras, f"tab:robust-{re.sub(r'[^A-Za-z0-9]+', '-', t.attack)}") for t in tables)


def document(body_file: str = "tables") -> str:
    """A minimal article around `\\input{<body_file>}` (landscape margins: the tables are wide)."""
    return "\n".join(
        [
            r"\documentclass{article}",
            r"\usepackage[T1]{fontenc}",
            r"\usepackage[utf8]{inputenc}",
            r"\usepackage[landscape,margin=1.5cm]{geometry}",
            r"\usepackage{booktabs}",
            r"\begin{document}",
            rf"\input{{{body_file}}}",
            r"\end{document}",
            "",
        ]
    )
