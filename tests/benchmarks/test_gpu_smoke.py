"""`python -m benchmarks.gpu --smoke`: the GPU check's own code on the CPU, in an environment that has only what the
GPU image has (torch, torchvision, pytorch-lightning, torchmetrics, tensorboard, scipy, scikit-learn, matplotlib
and their dependencies, plus hydra-core / omegaconf / antlr4 installed with --no-deps): this project's other
dependencies (the sweep and launcher plugins, pyautoattack, the project itself as installed) are hidden."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

HIDDEN = (
    "autoattack",
    "pyautoattack",
    "optuna",
    "sqlalchemy",
    "submitit",
    "ray",
    "hydra_plugins",
    "adv_smooth",
    "__editable__",
    "_adv_smooth",
    "adv_smooth-",
)


def _gpu_image_site(tmp_path: Path) -> Path:
    """site-packages as links, minus the hidden packages (and their .dist-info)."""
    view = tmp_path / "site"
    view.mkdir()
    for entry in Path(site.getsitepackages()[0]).iterdir():
        name = entry.name.lower().replace("-", "_")
        if not name.startswith(tuple(h.lower().replace("-", "_") for h in HIDDEN)) and not name.endswith(".pth"):
            (view / entry.name).symlink_to(entry)
    return view


@pytest.mark.slow
def test_gpu_check_smoke_runs_with_only_the_gpu_image_packages(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{_gpu_image_site(tmp_path)}"}
    command = [sys.executable, "-S", "-m", "benchmarks.gpu", "--smoke", "--out", str(out)]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["settings"]["smoke"] and not r["skipped"] and not r["failed"], r["failed"]
    training = r["training"]
    for row in ("vanilla", "adv", "smooth_m2", "parseval", "plain_vanilla", "plain_adv"):
        assert training[row]["images_per_s"] > 0 and training[row]["last_loss"] > 0
    assert set(training["ratios"]) == {
        "vanilla_vs_plain",
        "adv_vs_plain",
        "smooth_m2_step_over_vanilla",
        "parseval_step_over_vanilla",
    }
    evaluation = r["evaluation"]
    assert {"report", "plain_report", "default"} <= set(evaluation)
    # the plain attack loop and eval=report attack the same images: FGSM and PGD accuracies at 4 levels each
    assert len(evaluation["plain_report"]["acc"]["pgd"]) == len(evaluation["report"]["acc"]["pgd"]) == 4
    assert r["epoch"]["project_epoch_s"] > 0 and r["epoch"]["plain_epoch_s"] > 0 and r["epoch"]["probe"]["images"] > 0
    assert {"project", "project_no_logging", "bare_lightning", "plain"} <= set(r["overhead"])
    assert r["overhead"]["kernels"]["project"]["launches_per_step"] > 0
    statuses = {t["target"]: t["status"] for t in r["targets"]}
    assert statuses["digits_gpu_minus_cpu_points"] == "not measured"  # the digits job runs on the GPU only
    assert "ModuleNotFoundError" not in proc.stderr  # nothing tried to import what the GPU image lacks
