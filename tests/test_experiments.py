"""The experiment presets reproduce the study's tables: rows, recipes, the sweep each command launches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.conftest import CONF, REPO, compose_config

# (row option, defense, beta, gamma, m) in the order of the report's tables (numbers.md); 0 = knob absent.
SVHN_TABLE1 = [
    ("r01_vanilla", "vanilla", 0, 0, 0),
    ("r02_adv", "adv", 0, 0, 0),
    ("r03_smooth_g0.01_m2", "smooth", 0, 0.01, 2),
    ("r04_smooth_g0.003_m2", "smooth", 0, 0.003, 2),
    ("r05_smooth_g0.001_m1", "smooth", 0, 0.001, 1),
    ("r06_adv_parseval_b0.01", "adv_parseval", 0.01, 0, 0),
    ("r07_adv_smooth_g0.001_m1", "adv_smooth", 0, 0.001, 1),
    ("r08_adv_smooth_g0.01_m2", "adv_smooth", 0, 0.01, 2),
    ("r09_adv_smooth_g0.001_m2", "adv_smooth", 0, 0.001, 2),
    ("r10_adv_parseval_smooth_b0.01_g0.001_m1", "adv_parseval_smooth", 0.01, 0.001, 1),
]
TINY_TABLE2 = [  # (..., augment)
    ("r01_vanilla", "vanilla", 0, 0, 0, False),
    ("r02_da", "vanilla", 0, 0, 0, True),
    ("r03_adv_da", "adv", 0, 0, 0, True),
    ("r04_smooth_da_g0.01_m2", "smooth", 0, 0.01, 2, True),
    ("r05_adv_parseval_da_b0.01", "adv_parseval", 0.01, 0, 0, True),
    ("r06_adv_smooth_da_g0.01_m2", "adv_smooth", 0, 0.01, 2, True),
    ("r07_adv_parseval_smooth_da_b0.01_g0.001_m1", "adv_parseval_smooth", 0.01, 0.001, 1, True),
]
CIFAR10_LPN = [
    ("r01_vanilla", "vanilla", 0, 0, 0),
    ("r02_smooth_g0.01_m2", "smooth", 0, 0.01, 2),
    ("r03_parseval_b0.01", "parseval", 0.01, 0, 0),
    ("r04_parseval_smooth_b0.01_g0.01_m2", "parseval_smooth", 0.01, 0.01, 2),
]
PRESETS = ["svhn_table1", "tiny_imagenet_table2", "cifar10_lpn", "digits_demo"]


def knobs(cfg: DictConfig) -> tuple:
    d = cfg.defense
    return d.name, d.get("beta", 0), d.get("gamma", 0), d.get("m", 0)


def sweep_jobs(experiment: str) -> list[list[str]]:
    """The job overrides `python -m adv_smooth -m experiment=<experiment>` launches (Hydra's basic sweeper)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra._internal.utils import create_config_search_path
    from hydra.core.override_parser.overrides_parser import OverridesParser

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(CONF))
    overrides = OverridesParser.create(config_loader=loader).parse_overrides([f"{k}={v}" for k, v in params.items()])
    return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def test_all_row_files_are_tested() -> None:
    for table, rows in [("svhn_table1", SVHN_TABLE1), ("tiny_imagenet_table2", TINY_TABLE2),
                        ("cifar10_lpn", CIFAR10_LPN)]:
        assert sorted(p.stem for p in (Path(CONF) / "row" / table).glob("*.yaml")) == [r[0] for r in rows]


@pytest.mark.parametrize("row", SVHN_TABLE1, ids=[r[0] for r in SVHN_TABLE1])
def test_svhn_table1_rows_and_recipe(row: tuple) -> None:
    cfg = compose_config("experiment=svhn_table1", f"row/svhn_table1={row[0]}")
    assert knobs(cfg) == row[1:]
    assert cfg.dataset._target_.endswith("SvhnDataModule") and cfg.dataset.extra is True
    assert (cfg.dataset.batch_size, cfg.dataset.augment, cfg.trainer.max_epochs) == (100, False, 55)
    assert (cfg.optim.lr, list(cfg.optim.milestones), cfg.optim.lr * cfg.optim.gamma) == (0.1, [5], pytest.approx(1e-3))
    if "adv" in row[1]:  # the report's code: 50 adversarial + 50 clean, weights 1 and 0.3
        assert (cfg.defense.fraction, cfg.defense.adv_weight, cfg.defense.clean_weight) == (0.5, 1.0, 0.3)
        assert "adversarial" in cfg.defense.components
    if row[3]:
        assert cfg.defense.components.smoothness.gamma == row[3]  # the knob reaches the component


@pytest.mark.parametrize("row", TINY_TABLE2, ids=[r[0] for r in TINY_TABLE2])
def test_tiny_imagenet_table2_rows_and_recipe(row: tuple) -> None:
    cfg = compose_config("experiment=tiny_imagenet_table2", f"row/tiny_imagenet_table2={row[0]}")
    assert knobs(cfg) == row[1:5] and cfg.dataset.augment is row[5]
    assert cfg.model.stem_pool is True and cfg.dataset.batch_size == 50
    assert list(cfg.dataset.mean) == [0.485, 0.456, 0.406]


@pytest.mark.parametrize("row", CIFAR10_LPN, ids=[r[0] for r in CIFAR10_LPN])
def test_cifar10_lpn_rows_and_recipe(row: tuple) -> None:
    cfg = compose_config("experiment=cifar10_lpn", f"row/cifar10_lpn={row[0]}")
    assert knobs(cfg) == row[1:]
    assert cfg.dataset.variant == "cifar10" and cfg.dataset.augment is False and cfg.dataset.batch_size == 100
    assert (cfg.trainer.max_epochs, list(cfg.optim.milestones)) == (100, [50])
    assert cfg.optim.lr * cfg.optim.gamma == pytest.approx(1e-3)
    assert cfg.model.width == 64 and list(cfg.model.blocks) == [2, 2, 2, 2]


@pytest.mark.parametrize(
    ("experiment", "rows", "seeds"),
    [("svhn_table1", SVHN_TABLE1, 3), ("tiny_imagenet_table2", TINY_TABLE2, 3), ("cifar10_lpn", CIFAR10_LPN, 10)],
)
def test_one_command_launches_every_row_and_seed(experiment: str, rows: list[tuple], seeds: int) -> None:
    jobs = sweep_jobs(experiment)
    expected = [[f"row/{experiment}={r[0]}", f"seed={s}"] for r in rows for s in range(seeds)]
    assert jobs == expected


def test_digits_demo_is_two_defenses_by_two_seeds() -> None:
    assert sweep_jobs("digits_demo") == [[f"defense={d}", f"seed={s}"] for d in ("vanilla", "adv") for s in (0, 1)]
    cfg = compose_config("experiment=digits_demo")
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.max_epochs <= 5


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adv_smooth", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=180)


@pytest.mark.parametrize("experiment", PRESETS)
def test_cfg_job_prints_every_preset(experiment: str) -> None:
    proc = run_cli(f"experiment={experiment}", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert f"task_name: {experiment}" in proc.stdout and "defense:" in proc.stdout


def test_cfg_prints_the_search_and_the_slurm_launcher() -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    proc = run_cli("hparams_search=optuna", "hydra/launcher=slurm_gpu", "--cfg", "all")
    assert proc.returncode == 0, proc.stderr
    for expected in ("task_name: hparams_search", "test: false", "OptunaSweeper", "SlurmLauncher", "gpus_per_node: 1",
                     "defense.gamma: tag(log, interval(0.0001, 0.1))"):
        assert expected in proc.stdout, expected


def test_cfg_with_multirun_is_refused(tmp_path: Path) -> None:
    """Hydra prints a config for one job only: `-m ... --cfg job` fails without launching anything."""
    proc = run_cli("-m", "experiment=digits_demo", "--cfg", "job", f"hydra.sweep.dir={tmp_path}/sweep")
    assert proc.returncode != 0
    assert not (tmp_path / "sweep").exists()
