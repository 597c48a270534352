"""Shared test helpers: compose the real configs the way the entry point does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from adv_smooth.app.preflight.command_line import config_dir

REPO = Path(__file__).resolve().parent.parent
CONF = config_dir()


def pytest_configure(config: pytest.Config) -> None:
    """One intra-op thread per xdist worker, and per process a worker starts (they inherit the environment): the
    suite runs `-n 2` on two cores, and two workers of two threads each oversubscribe them, so the tiny networks
    of the tests wait on each other's thread barriers. ADV_SMOOTH_TEST_THREADS=N sets another count."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        threads = os.environ.get("ADV_SMOOTH_TEST_THREADS", "1")
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads
        torch.set_num_threads(int(threads))


# Small and fast everywhere in tests: CPU, few epochs, tiny network, no progress bar.
FAST = [
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "model.width=8",
    "model.blocks=[1,1,1,1]",
    "~callbacks.progress_bar",
    "eval.val_subset=64",
    "eval.attacks.pgd.steps=3",
]


def option_override(group: str, option: str) -> str:
    """The override that selects `option` of `group`; attacks are not a top-level choice but entries of
    `eval.attacks`, so theirs adds one under the label `extra`."""
    return f"+attack@eval.attacks.extra={option}" if group == "attack" else f"{group}={option}"


TINY_JOB = [  # the smallest real job: a few batches of a width-4 network, no robustness evaluation, nothing printed
    "trainer=cpu",
    "model.width=4",
    "model.blocks=[1,1]",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "~callbacks.progress_bar",
    "~callbacks.robustness",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def compose_config(
    *overrides: str, output_dir: Path | None = None, config_name: str = "config", conf: str | Path = CONF
) -> DictConfig:
    """Compose `config.yaml` (of `conf`, the project's by default) with overrides; bind
    `${hydra:runtime.output_dir}` to `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir or REPO / "outputs" / "test")
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture
def make_config(tmp_path: Path):
    """`make_config(*overrides, fast=True)` -> a composed config writing into tmp_path."""

    def make(*overrides: str, fast: bool = True) -> DictConfig:
        return compose_config(*(FAST if fast else []), *overrides, output_dir=tmp_path)

    return make


@pytest.fixture
def one_thread():
    """One intra-op thread for tiny models: as fast, and it cannot stall on the other thread's barriers when
    the machine is shared (use with `pytest.mark.usefixtures("one_thread")`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def quiet_trainer(**options: Any):
    """A CPU `pl.Trainer` that writes and prints nothing (no logger, checkpoints, progress bar or summary) and keeps
    autograd on in evaluation (the attacks need it); `options` add to or override these."""
    import pytorch_lightning as pl

    settings = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        inference_mode=False,
    )
    return pl.Trainer(**{**settings, **options})


def train_in_run_dir(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Train `cfg` into `out` with the `.hydra/config.yaml` a real run dir holds (what evaluation reads back)."""
    from adv_smooth.app.training_run import train

    (out / ".hydra").mkdir()
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")
    return train(cfg)
