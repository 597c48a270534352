"""The LaTeX tables: booktabs structure, best mean per column bold, marks, escaping; compiled if a TeX engine exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from adv_smooth.app.report_run import report
from adv_smooth.reporting.latex import escape
from tests.reporting.records_sweep import LEVELS, draw_records, write_records_job


@pytest.fixture
def tex_out(tmp_path: Path) -> Path:
    """A report whose tables hold every kind of cell: t-interval (3 seeds), Wilson (1 seed), marks, escaping."""
    rng = np.random.default_rng(3)
    rows = [("vanilla", {}, 0.80, 3), ("adv_smooth", {"gamma": 0.01, "m": 2}, 0.92, 3), ("my_def#1", {}, 0.5, 1)]
    num = 0
    for defense, knobs, p, seeds in rows:
        for seed in range(seeds):
            records = draw_records(rng, 600, p, {"fgsm": {LEVELS[0]: p - 0.1, LEVELS[1]: p - 0.3}})
            write_records_job(tmp_path / "sweep", num, records, seed=seed, defense=defense, knobs=knobs)
            num += 1
    report([str(tmp_path / "sweep")], tmp_path / "out", plots=False)
    return tmp_path / "out"


def _rows(tex: str) -> list[list[str]]:
    body = tex.split("\\midrule\n")[1].split("\\bottomrule")[0]
    return [line.removesuffix(" \\\\").split(" & ") for line in body.strip().splitlines()]


def test_structure_bold_marks_and_escaping(tex_out: Path) -> None:
    tex = (tex_out / "tables.tex").read_text()
    assert tex.count("\\begin{table}") == tex.count("\\end{table}") == 2  # fgsm and worst
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) == 2
    fgsm = tex.split("\\end{table}")[0]
    columns = re.search(r"\\begin\{tabular\}\{([lr]+)\}", fgsm).group(1)
    assert columns == "lllrrrr"  # defense, γ, m (no row has a β) | clean, 50, 33, n
    header = fgsm.split("\\toprule\n")[1].split(" \\\\")[0]
    assert header == "defense & $\\gamma$ & m & clean & 50 dB & 33 dB & n"
    rows = _rows(fgsm)
    assert all(len(r) == len(columns) for r in rows)
    by_name = {r[0]: r for r in rows}
    assert set(by_name) == {"vanilla", "adv\\_smooth", "my\\_def\\#1"}  # escaped
    # the best mean of every column is bold, and only there; the better row carries the ↑ mark
    assert all(c.startswith("\\textbf{") for c in by_name["adv\\_smooth"][3:6])
    assert not any("\\textbf" in c for r in (by_name["vanilla"], by_name["my\\_def\\#1"]) for c in r)
    assert all(c.endswith("$^{\\uparrow}$") for c in by_name["adv\\_smooth"][3:6])
    assert all(c.endswith("$^{\\downarrow}$") for c in by_name["my\\_def\\#1"][3:6])
    assert re.fullmatch(
        r"\\textbf\{\d+\.\d\d\} \$\\pm\$ \d\.\d\d \{\\scriptsize \[\d+\.\d, \d+\.\d\]\}.*", by_name["adv\\_smooth"][3]
    )
    caption = re.search(r"\\caption\{(.*)\}\n\\label\{tab:robust-fgsm\}", fgsm).group(1)
    assert "Student t" in caption and "Wilson score" in caption and "Holm-Bonferroni" in caption
    assert "95 \\%" in caption and "%" not in caption.replace("\\%", "")
    # braces balance in every table
    assert tex.count("{") - tex.count("\\{") == tex.count("}") - tex.count("\\}")
    document = (tex_out / "report.tex").read_text()
    assert (
        "\\usepackage{booktabs}" in document
        and "\\input{tables}" in document
        and document.rstrip().endswith("\\end{document}")
    )


def test_escape() -> None:
    assert (
        escape("a_b & 50% #1 {x} ~^\\") == r"a\_b \& 50\% \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )
    assert escape("β=0.01 γ ± Δ") == r"$\beta$=0.01 $\gamma$ $\pm$ $\Delta$"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine: the structure test stands in")
def test_compiles_with_pdflatex(tex_out: Path) -> None:
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
        cwd=tex_out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tex_out / "report.pdf").stat().st_size > 1000
