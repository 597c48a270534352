"""Sweeps end to end: a real multirun + report, an Optuna search that never touches the test split, and the
checks that refuse sweep set-ups that would silently go wrong (ddp inside a multirun, test in a search)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from adv_smooth.app.preflight.sweeps import check_sweep, refuse_ddp_in_multirun, refuse_test_in_search
from adv_smooth.app.search import objective, optimized
from adv_smooth.utils.errors import UserError
from tests.conftest import REPO, compose_config

# A sweep job as small as it gets on CPU: tiny network, one epoch, FGSM only at the two levels the search reads.
TINY = [
    "model.width=4",
    "model.blocks=[1,1]",
    "trainer.max_epochs=1",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "~eval.attacks.pgd",
    "~eval.attacks.pgd_l2",
    "eval.snr_levels=[50,33]",
    "eval.val_subset=64",
]


def run_cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def results_of(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]


# -- the multirun + report, for real ---------------------------------------------------------------------------
@pytest.mark.slow
def test_digits_demo_sweep_then_report(tmp_path: Path) -> None:
    """2 defenses x 2 seeds as one command; the report averages the seeds and draws the figures."""
    sweep = tmp_path / "sweep"
    proc = run_cli("adv_smooth", "-m", "experiment=digits_demo", f"hydra.sweep.dir={sweep}", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_of(sweep)
    assert len(results) == 4 and all(r["status"] == "completed" for r in results)
    assert sorted((r["choices"]["defense"], r["seed"]) for r in results) == [
        ("adv", 0),
        ("adv", 1),
        ("vanilla", 0),
        ("vanilla", 1),
    ]

    out = tmp_path / "report"
    proc = run_cli("adv_smooth.report", str(sweep), "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    tables, paired = proc.stdout.split("## Paired comparisons with the baseline")
    rows = [line for line in tables.splitlines() if line.startswith(("| vanilla", "| adv"))]
    assert len(rows) == 4, proc.stdout  # two tables (fgsm and the per-image worst case), one row per defense
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[-2] == "2"  # n = the two seeds
        assert all("±" in c and "[" in c for c in cells[-5:-2]), row  # clean, 50, 33: mean ± std [95 % interval]
    assert "Wilson score" in tables and "exact McNemar test stratified by seed" in tables
    assert len([line for line in paired.splitlines() if line.startswith("| adv")]) == 2  # fgsm, worst: adv vs vanilla
    written = {p.name for p in out.iterdir()}
    assert {"tables.tex", "report.tex", "comparisons.csv", "accuracy_vs_snr_fgsm.pdf"} <= written

    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["accuracy_vs_snr_fgsm.png", "accuracy_vs_snr_worst.png", "training_loss.png"]
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (out / "report.md").read_text().count("±") >= 6
    header = (out / "report.csv").read_text().splitlines()[0]
    assert header.startswith("attack,split,metric,defense,snr,n,val_mean,val_std,val_n,clean_mean"), header


# -- the Optuna search -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_optuna_search_reads_validation_only(tmp_path: Path) -> None:
    """3 trials: each returns the objective computed from its validation metrics; no test metric anywhere."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "search"
    proc = run_cli(
        "adv_smooth",
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.seed=0",
        f"hydra.sweep.dir={sweep}",
        "trainer=cpu",
        "logger=many",
        "objective.clean_floor=0.0",
        *TINY,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_of(sweep)
    assert len(results) == 3 and all(r["status"] == "completed" for r in results)
    values = []
    for r in results:
        assert r["config"]["test"] is False
        assert not any(k.startswith("test/") for k in {**r["fit"], **r["metrics"]}), "the test split was evaluated"
        assert r["optimized"]["search/objective"] == pytest.approx(r["fit"]["val/fgsm/snr33/acc"])
        values.append(r["optimized"]["search/objective"])
    for csv_log in sweep.glob("*/csv/metrics.csv"):
        assert "test/" not in csv_log.read_text().splitlines()[0], "the test split was logged"
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == pytest.approx(max(values))
    assert set(best.best_params) == {"defense.beta", "defense.gamma", "defense.m", "optim.lr"}


def test_objective_reads_validation_metrics_with_a_clean_floor() -> None:
    cfg = OmegaConf.create({"optimized_metric": "search/objective", "objective": {"clean_floor": 0.9}})
    feasible = {"fit": {"val/acc": 0.95, "val/fgsm/snr33/acc": 0.61}, "metrics": {"test/fgsm/snr33/acc": 0.99}}
    assert objective(feasible, cfg) == pytest.approx(0.61)  # the test number is ignored
    infeasible = {"fit": {"val/acc": 0.85, "val/fgsm/snr33/acc": 0.80}}
    assert objective(infeasible, cfg) == pytest.approx(-0.05)  # below every feasible trial
    assert optimized(feasible, cfg) == {"search/objective": pytest.approx(0.61)}
    assert optimized(feasible, OmegaConf.create({})) == {}


def test_objective_refuses_missing_and_test_metrics() -> None:
    only_test = {"fit": {"val/acc": 0.9}, "metrics": {"test/fgsm/snr33/acc": 0.5, "val/fgsm/snr33/acc": 0.5}}
    with pytest.raises(UserError, match=r"'val/fgsm/snr33/acc' was not logged during fit.*available: val/acc"):
        objective(only_test, OmegaConf.create({}))
    with pytest.raises(UserError, match="may only read validation metrics"):
        objective(only_test, OmegaConf.create({"objective": {"metric": "test/fgsm/snr33/acc"}}))
    with pytest.raises(UserError, match="not a finite number"):
        objective({"fit": {"val/acc": 0.9, "val/fgsm/snr33/acc": float("nan")}}, OmegaConf.create({}))


# -- refusals --------------------------------------------------------------------------------------------------
def sweep_job(*overrides: str, mode: RunMode = RunMode.MULTIRUN, sweeper: str | None = None):
    """A composed job config with HydraConfig set as inside a sweep job (mode, sweeper)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = mode
        cfg.hydra.runtime.output_dir = "/tmp/unused"
        if sweeper:
            cfg.hydra.sweeper = {"_target_": sweeper}
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture
def no_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "LOCAL_RANK", "GROUP_RANK"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer=ddp"],
        ["trainer=ddp", "trainer.devices=auto"],
        ["trainer=ddp", "trainer.devices=[0,1]"],
        ["trainer=ddp", "trainer.strategy=ddp_find_unused_parameters_true", "trainer.devices=-1"],
    ],
    ids=["devices=2", "auto", "list", "variant"],
)
def test_ddp_in_multirun_is_refused_in_one_line(overrides: list[str], no_slurm: None) -> None:
    cfg = sweep_job(*overrides)
    with pytest.raises(UserError, match=r"cannot run inside a multirun.*ddp_spawn") as info:
        refuse_ddp_in_multirun(cfg)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "mode"),
    [
        (["trainer=ddp", "trainer.strategy=ddp_spawn"], RunMode.MULTIRUN),
        (["trainer=ddp", "trainer.devices=1"], RunMode.MULTIRUN),
        (["trainer=ddp"], RunMode.RUN),
        ([], RunMode.MULTIRUN),
    ],
    ids=["ddp_spawn", "one-device", "single-run", "default-trainer"],
)
def test_safe_strategies_pass(overrides: list[str], mode: RunMode, no_slurm: None) -> None:
    check_sweep(sweep_job(*overrides, mode=mode))


def test_ddp_under_slurm_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """srun/submitit start one process per task: Lightning re-launches nothing, so ddp is fine there."""
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "sweep")
    refuse_ddp_in_multirun(sweep_job("trainer=ddp"))


def test_search_with_test_split_is_refused() -> None:
    optuna = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    with pytest.raises(UserError, match="test=true is invalid in a hyperparameter search"):
        refuse_test_in_search(sweep_job("test=true", sweeper=optuna))
    refuse_test_in_search(sweep_job("test=false", sweeper=optuna))
    refuse_test_in_search(sweep_job("test=true"))  # a grid sweep of seeds/defenses may test
    assert compose_config("hparams_search=optuna").test is False
