"""A real `-m defense=vanilla,adv` sweep (two tiny jobs, in this process): its last line says where it went and
how to report it, and that report shows the knob that tells the rows apart (`defense.snr`), not β, γ, m."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from adv_smooth.app.report_run import report
from tests.test_bad_inputs import run_main
from tests.test_multirun_failures import QUICK


@pytest.mark.slow
def test_sweep_ends_with_its_directory_and_the_report_command(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "multi run"  # a space: the printed command must still be one argument
    code, stderr = run_main("-m", "defense=vanilla,adv", *QUICK, f"hydra.sweep.dir={sweep}")
    assert code == 0, stderr
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == (
        f"sweep done: 2 of 2 jobs completed in {sweep}; tables and plots: "
        f"python -m adv_smooth.report {shlex.quote(str(sweep))}"
    )

    markdown, _ = report([str(sweep)], tmp_path / "report", plots=False)
    header = next(line for line in markdown.splitlines() if line.startswith("| defense"))
    assert header == "| defense | snr | val (tested weights) | clean | n | honesty |"
    rows = {
        line.split("|")[1].strip(): line for line in markdown.splitlines() if line.startswith(("| vanilla", "| adv"))
    }
    assert rows["vanilla"].startswith("| vanilla | – | ") and rows["adv"].startswith("| adv | 33 | ")
