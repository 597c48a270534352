"""Smoke tests of the benchmarks: `python -m benchmarks.smoke NAME ...` at the tiniest sizes, as a subprocess (the
tests do not import benchmarks): shapes of the JSON and the table, the plain loops doing the project's work, never
timings. The fast paths they measure are tested beside their code: tests/models/test_perf.py,
tests/benchmarks/test_host_syncs.py, tests/defenses/test_laplacian.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

GROUPS = {
    "training_and_evaluation": [
        "training_benchmark_shape",
        "evaluation_benchmark_shape",
        "cli_defaults",
        "interleaved_alternates_order_and_summaries",
        "ensemble_benchmark_uses_the_strong_presets_linf_attacks",
    ],
    "run": [
        "the_plain_loop_runs_what_the_project_would",
        "generated_tiny_imagenet_loads_and_is_cached",
        "summary_and_report_read_the_raw_runs",
    ],
    "snapshot_ensemble": ["snapshot_ensemble_benchmark_shape"],
    "data_pipeline": ["the_data_pipelines_run_side_by_side"],
    "certify": ["plain_loop_matches_the_tool_on_a_deterministic_network"],
    "minimal_norm": [
        "quality_counts_the_images_whose_minimal_snr_is_below_each_level",
        "the_preset_it_times_is_the_composed_eval_minimal",
        "a_tiny_run_has_every_field_and_check",
    ],
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_benchmark_smoke(group: str) -> None:
    checks = GROUPS[group]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.smoke", *checks], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    done = [line.split(":")[0].split(" ", 1)[1] for line in lines if line.startswith(("ok ", "skipped "))]
    assert done == checks, proc.stdout
