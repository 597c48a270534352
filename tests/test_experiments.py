"""The experiment presets reproduce the study's tables: rows, recipes, the sweep each command launches."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path
from unittest import mock

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
    ("r08_smooth_da_unaug0.5_g0.01_m2", "smooth", 0, 0.01, 2, True),  # beside the report: future work
    ("r09_adv_smooth_da_unaug0.5_g0.01_m2", "adv_smooth", 0, 0.01, 2, True),
]
CIFAR10_LPN = [
    ("r01_vanilla", "vanilla", 0, 0, 0),
    ("r02_smooth_g0.01_m2", "smooth", 0, 0.01, 2),
    ("r03_parseval_b0.01", "parseval", 0.01, 0, 0),
    ("r04_parseval_smooth_b0.01_g0.01_m2", "parseval_smooth", 0.01, 0.01, 2),
]
PRESETS = sorted(p.stem for p in (Path(CONF) / "experiment").glob("*.yaml"))  # discovered, not listed
STUDY_TABLES = {"svhn_table1", "tiny_imagenet_table2", "cifar10_lpn"}  # the report's and LPN's tables


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
    for table, rows in [
        ("svhn_table1", SVHN_TABLE1),
        ("tiny_imagenet_table2", TINY_TABLE2),
        ("cifar10_lpn", CIFAR10_LPN),
    ]:
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
    assert_original_code(cfg)


def assert_original_code(cfg: DictConfig) -> None:
    """The report's code (svhn.py / tiny_imageNet200.py) as the table presets reproduce it (docs/reproduction.md)."""
    assert cfg.model.final_bn is False and cfg.optim.reset_momentum is True and cfg.eval.checkpoint == "last"
    parts = cfg.defense.components
    if "adversarial" in parts:
        adv = parts.adversarial
        assert (adv.budget_mode, adv.separate_passes, adv.snr) == ("dataset_mean", True, 33.0)
        assert (adv.attack._target_, adv.attack.magnitude, adv.attack.bn_mode) == (
            "adv_smooth.attacks.fgsm.FGSM",
            "clipped_normal",
            "keep",
        )
    if "smoothness" in parts:
        assert parts.smoothness.knn_self is True


@pytest.mark.parametrize("row", TINY_TABLE2, ids=[r[0] for r in TINY_TABLE2])
def test_tiny_imagenet_table2_rows_and_recipe(row: tuple) -> None:
    cfg = compose_config("experiment=tiny_imagenet_table2", f"row/tiny_imagenet_table2={row[0]}")
    assert knobs(cfg) == row[1:5] and cfg.dataset.augment is row[5]
    assert cfg.model.stem_pool is True and cfg.dataset.batch_size == 50
    assert list(cfg.dataset.mean) == [0.485, 0.456, 0.406]
    assert cfg.dataset.unaugmented_fraction == (0.5 if "unaug" in row[0] else 0.0)
    assert_original_code(cfg)
    if row[0] == "r01_vanilla":  # the original script without --da: Adam 1e-4 for 20 epochs, then 1e-5 for 20
        assert (cfg.optim.optimizer._target_, cfg.optim.lr, cfg.optim.weight_decay) == ("torch.optim.Adam", 1e-4, 0)
        assert (list(cfg.optim.milestones), cfg.optim.lr * cfg.optim.gamma, cfg.trainer.max_epochs) == (
            [20],
            pytest.approx(1e-5),
            40,
        )
    else:  # with --da: SGD 0.1 / 0.01 / 0.001 at epochs 150 / 250, 350 epochs
        assert (cfg.optim.optimizer._target_, cfg.optim.lr, cfg.optim.momentum) == ("torch.optim.SGD", 0.1, 0.9)
        assert (list(cfg.optim.milestones), cfg.optim.gamma, cfg.trainer.max_epochs) == ([150, 250], 0.1, 350)


@pytest.mark.parametrize("row", ["r01_vanilla", "r03_adv_da"])
def test_tiny_imagenet_short_variant_is_labelled_and_only_shortens_the_sgd_rows(row: str) -> None:
    cfg = compose_config("experiment=tiny_imagenet_table2_short", f"row/tiny_imagenet_table2={row}")
    assert cfg.task_name == "tiny_imagenet_table2_short"
    expected = ([20], 40, True) if row == "r01_vanilla" else ([30, 45], 60, False)
    assert (list(cfg.optim.milestones), cfg.trainer.max_epochs, cfg.optim.reset_momentum) == expected
    assert "NOT THE ORIGINAL" in (Path(CONF) / "experiment" / "tiny_imagenet_table2_short.yaml").read_text()


@pytest.mark.parametrize("row", CIFAR10_LPN, ids=[r[0] for r in CIFAR10_LPN])
def test_cifar10_lpn_rows_and_recipe(row: tuple) -> None:
    cfg = compose_config("experiment=cifar10_lpn", f"row/cifar10_lpn={row[0]}")
    assert knobs(cfg) == row[1:]
    assert cfg.dataset.variant == "cifar10" and cfg.dataset.augment is False and cfg.dataset.batch_size == 100
    assert (cfg.trainer.max_epochs, list(cfg.optim.milestones)) == (100, [50])
    assert cfg.optim.lr * cfg.optim.gamma == pytest.approx(1e-3)
    assert cfg.model.width == 64 and list(cfg.model.blocks) == [2, 2, 2, 2]
    # LPN's cifar10.py / test_*.py: all 50,000 images, fixed statistics, last epoch tested, its own attacks
    assert cfg.model.final_bn is False and cfg.optim.reset_momentum is True
    assert cfg.dataset.val_fraction == 0 and cfg.eval.checkpoint == "last"
    assert cfg.callbacks.model_checkpoint.monitor is None
    assert (list(cfg.dataset.mean), list(cfg.dataset.std)) == ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010])
    assert {"fgsm", "pgd", "fgsm_normalized", "pgd_lpn"} <= set(cfg.eval.attacks)


def test_cifar10_lpn_attacks_are_lpns() -> None:
    from hydra.utils import instantiate

    attacks = compose_config("experiment=cifar10_lpn").eval.attacks
    pgd = instantiate(attacks.pgd_lpn)
    eps = pgd.eps_255 / 255
    assert (pgd.budget, eps, pgd.steps, pgd.random_start, pgd.include_fgsm) == (
        "fixed",
        pytest.approx(0.01),
        20,
        False,
        False,
    )
    assert pgd.step_size * eps / pgd.steps == pytest.approx(0.002)  # foolbox's stepsize=0.002
    assert pgd.clip is True and pgd.space == "pixel"  # bounds=(0, 1)
    normalized = instantiate(attacks.fgsm_normalized)
    assert (normalized.space, normalized.clip, normalized.budget, normalized.magnitude) == (
        "normalized",
        False,
        "snr",
        "sign",
    )


@pytest.mark.parametrize(
    ("experiment", "rows", "seeds"),
    [
        ("svhn_table1", SVHN_TABLE1, 3),
        ("tiny_imagenet_table2", TINY_TABLE2, 3),
        ("cifar10_lpn", CIFAR10_LPN, 10),
        ("tiny_imagenet_table2_short", TINY_TABLE2, 3),
    ],
)
def test_one_command_launches_every_row_and_seed(experiment: str, rows: list[tuple], seeds: int) -> None:
    jobs = sweep_jobs(experiment)
    table = experiment.removesuffix("_short")
    expected = [[f"row/{table}={r[0]}", f"seed={s}"] for r in rows for s in range(seeds)]
    assert jobs == expected


def test_digits_demo_is_two_defenses_by_two_seeds() -> None:
    assert sweep_jobs("digits_demo") == [[f"defense={d}", f"seed={s}"] for d in ("vanilla", "adv") for s in (0, 1)]
    cfg = compose_config("experiment=digits_demo")
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.max_epochs <= 5


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "adv_smooth", *args], cwd=REPO, capture_output=True, text=True, timeout=180
    )


@pytest.mark.parametrize("experiment", PRESETS)
def test_cfg_job_prints_every_preset(experiment: str) -> None:
    printed = cfg_job_in_process(f"experiment={experiment}")
    assert f"task_name: {experiment}" in printed and "defense:" in printed
    if experiment.removesuffix("_short") in STUDY_TABLES:  # the study's tables run its code's settings
        for setting in ("final_bn: false", "reset_momentum: true", "checkpoint: last", "knn_self: true"):
            assert setting in printed, setting


def cfg_job_in_process(*args: str) -> str:
    """What `python -m adv_smooth *args --cfg job` prints, run in this process (no interpreter start-up)."""
    from adv_smooth.__main__ import main

    out = io.StringIO()
    argv = ["adv_smooth", *args, "hydra/job_logging=none", "hydra/hydra_logging=none", "--cfg", "job"]
    with mock.patch.object(sys, "argv", argv), contextlib.redirect_stdout(out):
        try:
            main()
        except SystemExit as e:
            assert not e.code, e.code
        finally:
            GlobalHydra.instance().clear()
    return out.getvalue()


@pytest.mark.parametrize("experiment", ["svhn_table1", "tiny_imagenet_table2_short"])
def test_cfg_job_shows_the_reports_adversarial_training(experiment: str) -> None:
    row = "r02_adv" if experiment == "svhn_table1" else "r03_adv_da"
    printed = cfg_job_in_process(f"experiment={experiment}", f"row/{experiment.removesuffix('_short')}={row}")
    for setting in (
        "magnitude: clipped_normal",
        "budget_mode: dataset_mean",
        "bn_mode: keep",
        "separate_passes: true",
        "adv_weight: 1.0",
        "clean_weight: 0.3",
        "_target_: adv_smooth.attacks.fgsm.FGSM",
        "final_bn: false",
        "checkpoint: last",
        f"reset_momentum: {'false' if experiment.endswith('_short') else 'true'}",
    ):
        assert setting in printed, setting


# One row per table with every option of the preset on; `k=3` exercises the original kNN convention too.
TRAINED = [
    # `~dataset.extra`: SVHN's extra split is no option of the digits module (which refuses unknown keys)
    ("svhn_table1", "r10_adv_parseval_smooth_b0.01_g0.001_m1", ["defense.k=3", "~dataset.extra"]),
    ("tiny_imagenet_table2", "r09_adv_smooth_da_unaug0.5_g0.01_m2", ["defense.k=3", "model.stem_pool=true"]),
    ("tiny_imagenet_table2", "r01_vanilla", ["optim.milestones=[1]", "trainer.max_epochs=2"]),  # Adam + reset
    ("cifar10_lpn", "r04_parseval_smooth_b0.01_g0.01_m2", ["defense.k=3", "dataset.mean=[0.5]", "dataset.std=[0.25]"]),
]


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(("experiment", "row", "extra"), TRAINED, ids=[f"{e}-{r}" for e, r, _ in TRAINED])
def test_table_preset_trains_on_digits(experiment: str, row: str, extra: list[str], make_config) -> None:
    """The preset's own settings on the digits fixture (one-channel statistics where the preset fixes three)."""
    from adv_smooth.app.training_run import train

    cfg = make_config(
        f"experiment={experiment}",
        f"row/{experiment}={row}",
        "dataset=digits",
        "logger=csv",
        "dataset.eval_batch_size=64",
        "+trainer.limit_test_batches=1",
        "eval.snr_levels=[33]",
        "eval.sanity_snr_db=null",
        *extra,
    )
    assert_original_code(cfg)
    results = train(cfg)
    assert results["status"] == "completed" and results["epochs"] == cfg.trainer.max_epochs
    assert results["fit"]["train/ce_epoch"] > 0
    if "smoothness" in cfg.defense.components:
        assert results["fit"]["train/smooth_epoch"] >= 0
    if experiment == "cifar10_lpn":  # no validation split: the last epoch is tested, the LPN attacks ran
        assert "val/acc" not in results["fit"]
        assert {"test/pgd_lpn/fixed/acc", "test/fgsm_normalized/snr33/acc"} <= set(results["metrics"])


def test_cfg_prints_the_search_and_the_slurm_launcher() -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    proc = run_cli("hparams_search=optuna", "hydra/launcher=slurm_gpu", "--cfg", "all")
    assert proc.returncode == 0, proc.stderr
    for expected in (
        "task_name: hparams_search",
        "test: false",
        "OptunaSweeper",
        "SlurmLauncher",
        "gpus_per_node: 1",
        "defense.gamma: tag(log, interval(0.0001, 0.1))",
    ):
        assert expected in proc.stdout, expected


def test_cfg_with_multirun_shows_the_first_job(tmp_path: Path) -> None:
    """Hydra prints one job's config and refuses `-m` with `--cfg`: we show the sweep's first job, say so,
    and launch nothing."""
    proc = run_cli("-m", "experiment=svhn_table1", "seed=5,6", "--cfg", "job", f"hydra.sweep.dir={tmp_path}/sweep")
    assert proc.returncode == 0, proc.stderr
    assert "shows the sweep's first job" in proc.stderr and "seed: 5\n" in proc.stdout
    for original in (
        "magnitude: clipped_normal",
        "budget_mode: dataset_mean",
        "separate_passes: true",
        "final_bn: false",
        "knn_self: true",
    ):
        assert original in proc.stdout, original
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize(
    ("overrides", "pad_mode"),
    [
        ([], "reflect"),
        (["dataset=cifar10"], "reflect"),
        (["experiment=tiny_imagenet_table2"], "zeros"),  # the original's RandomCrop padding
        (["experiment=baselines"], "zeros"),  # the baselines' own code, and what baselines_digits.json measured
    ],
)
def test_the_crop_pads_by_reflection_unless_a_preset_reproduces_zero_padding(
    overrides: list[str], pad_mode: str
) -> None:
    """benchmarks/results/defaults_effect.json: reflection padding scored +1.3 to +1.5 points clean on digits at 3 and
    8 epochs, so it is every dataset preset's default; presets that reproduce a recipe keep that recipe's zeros."""
    assert compose_config(*overrides).dataset.pad_mode == pad_mode
