"""What results.json and the loggers record about a run: a resumed run's whole record, the code and libraries
that made it, its split sizes, and TensorBoard runs named by their overrides with their hyperparameters."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from adv_smooth.app.hparams import final_metrics, run_hparams
from adv_smooth.app.provenance import git_state, versions
from adv_smooth.app.summary import format_summary
from adv_smooth.app.training_run import resolve_resume, train
from adv_smooth.utils.run_name import MAX_LENGTH, run_name
from tests.conftest import TINY_JOB, compose_config
from tests.test_bad_inputs import run_main

TINY = TINY_JOB


def test_resume_last_without_a_checkpoint_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert resolve_resume("last", tmp_path) is None
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        f"note: resume=last: no checkpoint at {tmp_path / 'checkpoints' / 'last.ckpt'}, training from scratch"
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_resumed_run_has_the_whole_record(tmp_path: Path) -> None:
    """Killed after its last checkpoint, before testing: the resume trains nothing, yet its record keeps the fit
    metrics, counts the first part's time, and says what made it."""
    first = train(compose_config(*TINY, "logger=csv", output_dir=tmp_path))
    (tmp_path / "results.json").unlink()  # as if killed while testing
    resumed = train(compose_config(*TINY, "logger=csv", "resume=last", output_dir=tmp_path))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["fit"]["val/acc"] == first["fit"]["val/acc"] and saved["fit"]["train/loss_epoch"] > 0
    assert len(saved["wall_time_parts_s"]) == 2 and saved["wall_time_parts_s"][0] > 0
    assert saved["wall_time_s"] == pytest.approx(sum(saved["wall_time_parts_s"]), abs=0.02)
    assert saved["wall_time_s"] > saved["wall_time_parts_s"][1]  # not the resumed part alone
    assert "val accuracy: " in format_summary(resumed)
    assert saved["best_val_acc"] == pytest.approx(first["fit"]["val/acc"])  # one epoch: the best is the only one
    assert saved["versions"]["torch"] == torch.__version__ and saved["versions"]["python"].count(".") == 2
    assert {"pytorch_lightning", "hydra"} <= set(saved["versions"])
    sizes = saved["split_sizes"]
    assert sum(sizes.values()) == 1797 and sizes["val"] == round(0.1 * (sizes["train"] + sizes["val"]))  # digits
    assert saved["git_commit"] == git_state()["git_commit"]


def test_git_commit_of_the_package_tree_or_unknown(tmp_path: Path) -> None:
    outside = tmp_path / "site-packages" / "adv_smooth"
    outside.mkdir(parents=True)
    assert git_state(outside) == {"git_commit": "unknown", "git_dirty": None}
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "clone"
    (repo / "adv_smooth").mkdir(parents=True)
    (repo / "adv_smooth" / "x.py").write_text("x = 1\n")
    env = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "."], [*env, "commit", "-q", "-m", "x"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert git_state(repo / "adv_smooth") == {"git_commit": head, "git_dirty": False}
    (repo / "adv_smooth" / "x.py").write_text("x = 2\n")
    assert git_state(repo / "adv_smooth") == {"git_commit": head, "git_dirty": True}
    assert versions()["torch"] == torch.__version__


def test_run_names_and_hparams_from_the_config() -> None:
    assert (
        run_name(["defense=adv", "seed=1", "resume=last", "ckpt=a.ckpt", "dataset.root=/data/x"])
        == "defense=adv,seed=1"
    )
    assert (
        run_name(["optim/schedule=tiny", "optimized_metric=val/acc"]) == "optim_schedule=tiny,optimized_metric=val_acc"
    )
    long = run_name([f"defense.gamma={i}" for i in range(40)])
    assert len(long) == MAX_LENGTH and long != run_name([f"defense.gamma={i}" for i in range(41)])
    assert run_name([]) == "defaults" and run_name(["resume=last"]) == "defaults", "every run named"
    typed = ["trainer=cpu", "model.width=4", "eval.test_subset=20", *(f"+x{i}=1" for i in range(30)), "defense=smooth"]
    assert run_name(typed).startswith("defense=smooth,model.width=4,"), "the knob typed last survives the cut"
    assert (
        run_name(["trainer=cpu", "row/svhn_table1=r02_adv", "seed=1"]) == "seed=1,row_svhn_table1=r02_adv,trainer=cpu"
    )
    params = run_hparams(
        compose_config("defense=adv", "seed=3", "eval.test_subset=100"), {"defense": "adv", "experiment": "None"}
    )
    assert params["eval.test_subset"] == 100 and params["eval.test_subset_seed"] == "null"
    assert params["defense"] == "adv" and "experiment" not in params
    # every run names every knob, so runs of different defenses in one logdir share TensorBoard's columns
    blanks = [params[f"defense.{k}"] for k in ("gamma", "m", "beta", "k")]  # numbers: NaN keeps the column numeric
    assert all(isinstance(v, float) and math.isnan(v) for v in blanks), blanks
    assert params["defense.knn_self"] == "null" and params["defense.layers"] == "null"
    assert params["defense.snr"] == 33.0 and params["optim.lr"] == 0.1 and params["seed"] == 3
    assert params["eval.snr_levels"] == "[50, 45, 40, 33, 25, 20]"
    assert params["dataset.augment"] in ("true", "false"), "a boolean reads true / false, not 1.0000"
    lead = ["defense", "defense.beta", "defense.gamma", "defense.m", "defense.snr", "optim.lr", "trainer.max_epochs"]
    expected = [k for k in lead if k in params] + ["seed"]
    assert list(params)[: len(expected)] == expected and "defense.snr" in expected, list(params)
    order = list(params)
    assert order.index("seed") < order.index("eval.snr_levels") < order.index("dataset.batch_size"), order
    choices = {"callbacks": "default", "attack@eval.attacks.pgd_l2": "pgd", "hydra/launcher": "basic", "model": "m"}
    assert set(run_hparams(compose_config(), choices)) & set(choices) == {"model"}, "no plumbing columns"
    assert all(isinstance(v, (bool, int, float, str)) for v in params.values())
    metrics = final_metrics({"fit": {"val/acc": 0.5}, "metrics": {"test/acc": 0.4, "test/worst/snr33/acc": 0.2}})
    assert metrics == {"val/acc": 0.5, "test/acc": 0.4, "test/worst/snr33/acc": 0.2}, "the run's own scalars"


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_sweep_jobs_have_distinct_tensorboard_runs_with_hparams(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    code, stderr = run_main("-m", "seed=0,1", *TINY, "logger=tensorboard", f"hydra.sweep.dir={tmp_path}")
    assert code == 0, stderr
    runs = sorted(p.parent.relative_to(tmp_path) for p in tmp_path.rglob("events.out.tfevents.*"))
    names = {run.parts[-1] for run in runs}
    assert {run.parts[:2] for run in runs} == {("0", "tensorboard"), ("1", "tensorboard")}
    assert len(names) == 2 and all(re.search(r"seed=[01]", n) for n in names), runs
    for job in ("0", "1"):
        run = next((tmp_path / job / "tensorboard").iterdir())
        events = EventAccumulator(str(run))
        events.Reload()
        start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
        assert hparams["seed"].number_value == int(job) and hparams["defense"].string_value == "vanilla"
        scalars = events.Tags()["scalars"]
        assert not any(t.startswith("hp/") for t in scalars) and "epoch" not in scalars, "no one-dot charts"
        assert "train/epoch" in scalars
        results = json.loads((tmp_path / job / "results.json").read_text())
        assert events.Scalars("test/acc")[-1].value == pytest.approx(results["metrics"]["test/acc"])
        end = plugin_data_pb2.HParamsPluginData.FromString(events.PluginTagToContent("hparams")["_hparams_/experiment"])
        assert {m.name.tag for m in end.experiment.metric_infos} >= {"val/acc", "test/acc"}
        shown = sorted(end.experiment.hparam_infos, key=lambda h: (not h.differs, h.name))[:5]  # TensorBoard's 5
        assert [h.name for h in shown][:3] == ["defense", "optim.lr", "seed"], "the knobs are the columns shown"
        assert "seed: " + job in (run / "hparams.yaml").read_text()
