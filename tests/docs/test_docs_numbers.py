"""Every benchmark table the docs quote is regenerated from the committed JSON in benchmarks/results/ and must
equal the page's (`python -m benchmarks.doc_tables --check`, run as a subprocess); the README's table-free page
points there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_quoted_tables_equal_the_committed_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.doc_tables", "--check", str(REPO / "docs")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr


def test_the_readme_quotes_no_benchmark_table() -> None:
    readme = (REPO / "README.md").read_text()
    assert "| accuracy (%) |" not in readme and "images/s" not in readme
    assert len(readme.splitlines()) <= 150
