"""Grouping ignores what a job derives from its own overrides (the TensorBoard run name holds the seed)."""

from __future__ import annotations

import json
from pathlib import Path

from adv_smooth.reporting.jobs import find_jobs
from adv_smooth.reporting.table import group_jobs


def test_run_name_holding_the_seed_does_not_split_groups(tmp_path: Path) -> None:
    for seed in (0, 1):
        job = tmp_path / str(seed)
        job.mkdir()
        config = {
            "seed": seed,
            "defense": {"name": "vanilla"},
            "logger": {"tensorboard": {"version": f"defense=vanilla,seed={seed}", "name": "tensorboard"}},
        }
        results = {"status": "completed", "seed": seed, "choices": {"defense": "vanilla"}, "config": config}
        (job / "results.json").write_text(json.dumps(results | {"metrics": {"test/acc": 0.9}}))
    groups, columns = group_jobs(find_jobs([tmp_path]))
    assert len(groups) == 1 and len(groups[0].jobs) == 2
    assert not any("logger" in c for c in columns)
