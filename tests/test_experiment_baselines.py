"""experiment=baselines: the field's standard defenses beside the study's, on CIFAR-10 and SVHN."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CONF, compose_config
from tests.test_experiments import sweep_jobs

ROWS = {  # row option -> (defense preset, components)
    "r01_vanilla": ("vanilla", []),
    "r02_adv": ("adv", ["adversarial"]),
    "r03_parseval": ("parseval", ["parseval"]),
    "r04_smooth": ("smooth", ["smoothness"]),
    "r05_adv_parseval_smooth": ("adv_parseval_smooth", ["adversarial", "parseval", "smoothness"]),
    "r06_pgd": ("pgd", ["adversarial"]),
    "r07_trades": ("trades", ["trades"]),
    "r08_pgd_parseval": ("pgd_parseval", ["adversarial", "parseval"]),
    "r09_trades_smooth": ("trades_smooth", ["trades", "smoothness"]),
    "r10_snapshot": ("vanilla", []),
}


def test_the_sweep_is_rows_by_datasets_by_seeds() -> None:
    assert sorted(p.stem for p in (Path(CONF) / "row" / "baselines").glob("*.yaml")) == sorted(ROWS)
    jobs = sweep_jobs("baselines")
    assert len(jobs) == len(ROWS) * 2 * 3
    assert {job[0] for job in jobs} == {"dataset=cifar10", "dataset=svhn"}


@pytest.mark.parametrize("dataset", ["cifar10", "svhn"])
@pytest.mark.parametrize("row", sorted(ROWS))
def test_rows_and_recipe(row: str, dataset: str) -> None:
    cfg = compose_config("experiment=baselines", f"dataset={dataset}", f"row/baselines={row}")
    name, components = ROWS[row]
    assert cfg.defense.name == name and list(cfg.defense.components) == components
    assert (cfg.dataset.batch_size, cfg.dataset.augment, cfg.trainer.max_epochs) == (128, True, 60)
    assert cfg.dataset.flip is (dataset == "cifar10")  # SVHN's digits are never mirrored
    for part in cfg.defense.components.values():
        if "snr" in part:
            assert part.snr == 33.0 and part.attack._target_ == "adv_smooth.attacks." + (
                "fgsm.FGSM" if row in ("r02_adv", "r05_adv_parseval_smooth") else "pgd.PGD"
            )
    if row == "r10_snapshot":
        assert cfg.optim.scheduler._target_.endswith("CosineRestarts") and cfg.callbacks.snapshots.cycles == 3
    else:
        assert list(cfg.optim.milestones) == [30, 45] and "snapshots" not in cfg.callbacks
