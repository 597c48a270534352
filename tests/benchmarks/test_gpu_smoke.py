"""`python -m benchmarks.gpu --smoke`: the GPU check's own code on the CPU, in an environment that has only what the
GPU image has (torch, torchvision, pytorch-lightning, torchmetrics, tensorboard and their dependencies, plus
hydra-core / omegaconf / antlr4 installed with --no-deps): this project's other dependencies are hidden."""

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
    "sklearn",
    "scikit_learn",
    "scipy",
    "matplotlib",
    "autoattack",
    "pyautoattack",
    "optuna",
    "sqlalchemy",
    "submitit",
    "ray",
    "joblib",
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
    assert r["settings"]["smoke"] and not r["skipped"]
    assert set(r["training"]) | set(r["failed"]) == {
        "vanilla",
        "adv",
        "smooth_m2",
        "parseval",
        "vanilla+compile",
        "adv+compile",
    }
    assert {"vanilla", "adv"} <= set(r["training"]) and all(v["images_per_s"] > 0 for v in r["training"].values())
    assert set(r["evaluation"]) == {"curve_default", "strong"}
    assert r["evaluation"]["strong"]["attacks"] == sorted(
        ["apgd_ce_l2", "apgd_t_l2", "square_l2", "apgd_ce_linf", "apgd_t_linf", "square_linf"]
    )
    assert "sklearn" not in proc.stderr  # nothing tried to import what the GPU image lacks
