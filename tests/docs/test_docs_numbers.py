"""Every benchmark table the docs quote is regenerated from the committed JSON in benchmarks/results/ and must
equal the page's (benchmarks/doc_tables.py); the README's table-free page points there."""

from __future__ import annotations

from pathlib import Path

from benchmarks.doc_tables import TABLES, tables_in

REPO = Path(__file__).resolve().parents[2]


def test_the_quoted_tables_equal_the_committed_json() -> None:
    seen: dict[str, str] = {}
    for page in sorted((REPO / "docs").rglob("*.md")):
        for name, table in tables_in(page.read_text()).items():
            assert name in TABLES, f"{page}: no generator for table {name!r}"
            assert table == TABLES[name](), f"{page.relative_to(REPO)}: table {name!r} disagrees with its JSON"
            seen[name] = str(page)
    assert set(seen) == set(TABLES), f"tables no page shows: {set(TABLES) - set(seen)}"


def test_the_readme_quotes_no_benchmark_table() -> None:
    readme = (REPO / "README.md").read_text()
    assert "| accuracy (%) |" not in readme and "images/s" not in readme
    assert len(readme.splitlines()) <= 150
