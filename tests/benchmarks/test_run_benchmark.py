"""Smoke tests of `benchmarks/run.py` and its parts at the tiniest sizes (never timings): the plain loop's settings
come from the project's composed config, it trains and evaluates, the generated data load with the project's
loaders, and the report reads the JSON it writes."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from adv_smooth.app.build import build_attacks
from adv_smooth.utils.io import write_json_atomic
from benchmarks import plain_run, run, run_data

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["model.width=4", "model.blocks=[1,1,1,1]"]


def test_the_plain_loop_runs_what_the_project_would(tmp_path) -> None:
    root = run_data.make_folder(tmp_path / "folder", train=40, test=10)
    size = {**run.QUICK, "folder_epochs": 1, "test_images": 4}
    overrides = run.job_overrides("folder", size, root)
    assert overrides[:2] == ["dataset=folder", f"dataset.root={root}"] and "+trainer.limit_test_batches=1" in overrides
    spec = run.plain_spec([*overrides, *TINY], size["test_images"])
    assert spec["dataset"]["kwargs"]["augment"] is True and spec["epochs"] == 1 and spec["optim"]["milestones"] == [1]
    assert spec["levels"] == [50, 45, 40, 33] and spec["sanity_snr_db"] == -10
    cfg = run.compose_run_config([*overrides, *TINY])
    project = build_attacks(OmegaConf.to_container(cfg.eval.attacks, resolve=True))
    assert repr(plain_run.build_attacks(spec["attacks"])) == repr(project)  # the same attacks, option for option
    out = plain_run.run(json.loads(json.dumps(spec)))  # what the child process reads
    assert out["n_test"] == 4 and set(out["attack_acc"]) == {"fgsm", "pgd", "pgd_l2"}
    assert all(len(v) == 4 and all(0 <= a <= 1 for a in v) for v in out["attack_acc"].values())
    assert run.job_overrides("default", run.FULL, root) == []  # the default job is `python -m adv_smooth` itself


def test_generated_tiny_imagenet_loads_and_is_cached(tmp_path) -> None:
    root = run_data.make_tiny_imagenet(tmp_path, per_class=2, classes=3)
    timing = run_data.time_tiny_imagenet(root)
    assert timing["jpegs"] == 3 * 2 + 3 and timing["first_s"] > 0 and timing["cached_s"] > 0
    assert (root / "tiny-imagenet-200" / "cache_uint8.pt").is_file()


def test_summary_and_report_read_the_raw_runs(tmp_path) -> None:
    def rep(wall: float, report: dict) -> dict:
        return {"wall_s": wall, "cpu_s": 2 * wall, "report": report}

    raw = {}
    for job in ("default", "folder"):
        raw[f"{job}/project"] = [rep(w, {"test_acc": 0.9, "in_run_s": w - 5}) for w in (110.0, 120.0)]
        phases = {"imports_s": 2.0, "data_s": 1.0, "train_s": 20.0, "test_s": 70.0, "test_acc": 0.9}
        raw[f"{job}/plain"] = [rep(100.0, phases), rep(100.0, phases)]
        raw[f"{job}/startup"] = [rep(6.0, {"imports_s": 4.0, "compose_s": 0.5, "data_s": 1.0})] * 2
    jobs = run.summarize(raw)
    assert jobs["default"]["ratio_wall"]["median"] == pytest.approx(1.15) and jobs["default"]["status"] == "FAIL"
    result = {
        "jobs": jobs,
        "tiny_imagenet": {"jpegs": 9, "first_run_s_per_10k": {"median": 30.0}, "cached_s_per_10k": {"median": 0.5}},
        "load_average_1min_before_after": [1.0, 1.0],
        "seconds": 1.0,
    }
    table = run.format_report(result)
    assert "1.150" in table and "FAIL" in table and "30.0 s per 10,000 JPEGs" in table
    assert json.loads(write_json_atomic(tmp_path / "run.json", result).read_text())["jobs"]["folder"]
