"""The documentation site builds with `mkdocs build --strict`: no broken link, no page outside the navigation,
every `::: module.Object` of the API reference found."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("mkdocs", "material", "mkdocstrings_handlers.python")),
    reason='mkdocs, mkdocs-material or mkdocstrings[python] is not installed (pip install -e ".[dev]")',
)
def test_the_site_builds_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for page in ("index.html", "reference/config/index.html", "reference/api/index.html", "performance/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    assert "adv_smooth.attacks.pgd.PGD" in (tmp_path / "site" / "reference/api/index.html").read_text()
