"""The publication outputs end to end: a single run, the minimal-SNR figures, failed jobs still listed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adv_smooth.app.report_run import report
from tests.reporting.records_sweep import LEVELS, draw_records, write_records_job


def test_single_run_with_minimal_snr_records(tmp_path: Path) -> None:
    """One run (no sweep, no baseline to compare with): Wilson intervals over its images, the figures in
    PNG and PDF, and the distribution of minimal SNR for its minimum-norm attack."""
    rng = np.random.default_rng(5)
    records = draw_records(rng, 500, 0.9, {"fmn_l2": {LEVELS[0]: 0.8, LEVELS[1]: 0.5}}, min_snr="fmn_l2")
    run = write_records_job(tmp_path, 0, records, seed=0, defense="adv", knobs={})
    markdown, files = report([str(run)], tmp_path / "out")
    k = int(records.clean.sum())
    assert f"| adv | {100 * k / 500:.2f} [" in markdown  # one seed: no std, the Wilson interval
    assert "rows with fewer seeds: over the test images (Wilson score" in markdown
    assert "One row: no paired comparisons." in markdown
    names = {f.name for f in files}
    assert {"min_snr_fmn_l2.png", "min_snr_fmn_l2.pdf", "accuracy_vs_snr_fmn_l2.pdf", "tables.tex"} <= names
    pdf = (tmp_path / "out" / "min_snr_fmn_l2.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000
    intervals = (tmp_path / "out" / "intervals.csv").read_text().splitlines()
    assert intervals[0] == "attack,group,job,seed,column,acc,images,wilson_lo,wilson_hi"
    assert len(intervals) == 1 + 2 * 3  # fmn_l2 and worst tables x (clean, 50, 33)


def test_failed_and_unfinished_jobs_are_listed_beside_the_statistics(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    for num, (defense, p) in enumerate([("vanilla", 0.8), ("adv", 0.9)]):
        records = draw_records(rng, 300, p, {"fgsm": {LEVELS[0]: p - 0.1}})
        write_records_job(tmp_path / "sweep", num, records, seed=0, defense=defense)
    failed = tmp_path / "sweep" / "2"
    (failed / ".hydra").mkdir(parents=True)
    (failed / "results.json").write_text(json.dumps({"status": "failed", "error": "NonFiniteLossError: boom"}))
    running = tmp_path / "sweep" / "3"
    (running / ".hydra").mkdir(parents=True)
    (running / ".hydra" / "config.yaml").write_text("seed: 1\n")
    markdown, _ = report([str(tmp_path / "sweep")], tmp_path / "out", plots=False)
    assert "### Jobs not in the tables (2)" in markdown
    assert "sweep/2 [failed] (no overrides recorded): NonFiniteLossError: boom" in markdown
    assert "sweep/3 [no results.json]" in markdown
    assert "| adv |" in markdown and "↑" in markdown.split("| adv |")[1].splitlines()[0]
