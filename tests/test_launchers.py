"""Sweeps through real launchers: submitit's local executor (one worker process per job, what `slurm_gpu` runs on a
cluster) and Ray (a local Ray the sweep starts, one task per job); `report` reads either sweep like a basic one.

Ray asks for one GPU per job in `hydra/launcher=ray_gpu` (Ray then sets each job's CUDA_VISIBLE_DEVICES); this
machine has none, so the test asks for 0 GPUs and 1 CPU per job. A missing Ray is one line, exit status 2.
"""

from __future__ import annotations

import importlib.util
import io
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

import pytest

from adv_smooth.app import report_run
from tests.conftest import compose_config
from tests.test_bad_inputs import assert_one_line_exit_2, run_main
from tests.test_sweeps import TINY, results_of, run_cli

TWO_JOBS = ["defense=vanilla,adv", "eval.val_subset=0", "+trainer.limit_train_batches=2"]
HAS_RAY = importlib.util.find_spec("ray") is not None and importlib.util.find_spec("hydra_plugins.hydra_ray_launcher")


def _report_rows(sweep: Path, tmp_path: Path) -> list[str]:
    out = io.StringIO()
    with redirect_stdout(out):
        report_run.main([str(sweep), "--out", str(tmp_path / "report")])
    return [line for line in out.getvalue().splitlines() if line.startswith(("| vanilla", "| adv"))]


def _sweep_then_report(tmp_path: Path, *launcher: str) -> list[dict]:
    sweep = tmp_path / "sweep"
    proc = run_cli("adv_smooth", "-m", *launcher, *TWO_JOBS, f"hydra.sweep.dir={sweep}", *TINY, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_of(sweep)
    assert sorted(r["choices"]["defense"] for r in results) == ["adv", "vanilla"]
    assert all(r["status"] == "completed" and r["robustness"]["test"]["n"] == 449 for r in results)
    rows = _report_rows(sweep, tmp_path)
    assert {"vanilla", "adv"} <= {row.split("|")[1].strip() for row in rows}, rows  # both jobs
    return results


@pytest.mark.slow
def test_submitit_local_sweep_then_report(tmp_path: Path) -> None:
    _sweep_then_report(
        tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=15", "hydra.launcher.cpus_per_task=1"
    )
    logs = list((tmp_path / "sweep" / ".submitit").rglob("*_log.out"))
    assert len(logs) == 2  # two submitit worker processes, one per job


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason='Ray or hydra-ray-launcher is not installed (pip install -e ".[ray]")')
def test_ray_sweep_then_report(tmp_path: Path) -> None:
    _sweep_then_report(
        tmp_path,
        "hydra/launcher=ray_gpu",
        "hydra.launcher.ray.remote.num_gpus=0",  # no GPU here: a job asking for one would wait forever
        "hydra.launcher.ray.remote.num_cpus=1",
        "+hydra.launcher.ray.init.num_cpus=2",
    )


@pytest.mark.skipif(not HAS_RAY, reason='Ray or hydra-ray-launcher is not installed (pip install -e ".[ray]")')
def test_ray_gpu_asks_ray_for_one_gpu_per_job() -> None:
    from hydra.core.hydra_config import HydraConfig

    compose_config("hydra/launcher=ray_gpu")
    remote = HydraConfig.get().launcher.ray.remote
    assert remote.num_gpus == 1 and remote.max_calls == 1


@pytest.mark.parametrize("launcher", ["ray_gpu", "ray"])
def test_ray_launcher_without_ray_is_one_line_exit_2(launcher: str, tmp_path: Path) -> None:
    real = importlib.util.find_spec

    def no_ray(name: str, *args, **kwargs):
        return (
            None
            if name == "ray" or name.startswith(("ray.", "hydra_plugins.hydra_ray"))
            else real(name, *args, **kwargs)
        )

    with mock.patch("importlib.util.find_spec", no_ray):
        code, stderr = run_main("-m", f"hydra/launcher={launcher}", "seed=0,1", f"hydra.sweep.dir={tmp_path}")
    assert_one_line_exit_2(code, stderr, f"hydra/launcher={launcher} needs Ray")
    assert 'pip install "adv-smooth[ray]"' in stderr


def test_the_slurm_multi_node_recipe_composes(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/cluster.md's recipe: 2 nodes x 4 GPUs, one SLURM task per GPU; the ddp-in-multirun refusal stays."""
    from adv_smooth.app.preflight.sweeps import refuse_ddp_in_multirun
    from adv_smooth.utils.errors import UserError
    from tests.test_sweeps import sweep_job

    recipe = ["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2", "resume=last"]
    cfg = compose_config(*recipe, "hydra.run.dir=/shared/runs/x")
    assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.trainer.num_nodes) == ("ddp", 4, 2)
    for var in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "LOCAL_RANK", "GROUP_RANK"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UserError, match="cannot run inside a multirun"):
        refuse_ddp_in_multirun(sweep_job("trainer=ddp", "trainer.devices=1", "trainer.num_nodes=2"))
    monkeypatch.setenv("SLURM_NTASKS", "8")  # srun / submitit started the 8 processes: nothing is re-launched
    monkeypatch.setenv("SLURM_JOB_NAME", "sweep")
    refuse_ddp_in_multirun(sweep_job(*recipe))
    compose_config("hydra/launcher=slurm_gpu", "hydra.launcher.nodes=2", "hydra.launcher.tasks_per_node=4")
