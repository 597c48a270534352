"""The robustness callback's validation plan in real `trainer.fit` runs (tiny network, synthetic data, CPU).

The budget decides images, frequency, attack and level unless the user sets them; whatever validation ran,
the test split's curve is the same, number for number.
"""

from __future__ import annotations

import logging

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from adv_smooth.attacks import FGSM, PGD
from adv_smooth.lightning.module import RobustClassifier
from adv_smooth.lightning.robustness_callback import RobustnessVsSNR
from adv_smooth.lightning.validation_plan import loader_images, validation_request
from adv_smooth.models.preact_resnet import PreActResNet
from adv_smooth.robustness.budget_plan import TRAINING_PASS, evaluation_passes
from adv_smooth.utils.errors import UserError
from tests.conftest import quiet_trainer

pytestmark = pytest.mark.usefixtures("one_thread")
LEVELS = [40, 30, 20]


def _data(n: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.rand(n, 1, 8, 8, generator=g), torch.arange(n) % 3), batch_size=16)


def _fit_and_test(tmp_path, epochs: int = 2, train: int = 96, **options) -> RobustnessVsSNR:
    callback = RobustnessVsSNR(
        {"fgsm": FGSM(), "pgd": PGD(steps=2)}, LEVELS, log_figure=False, save_records=False, seed=0, **options
    )
    torch.manual_seed(0)
    module = RobustClassifier(PreActResNet(num_classes=3, in_channels=1, width=4, blocks=(1,)))
    trainer = quiet_trainer(max_epochs=epochs, num_sanity_val_steps=0, callbacks=[callback], default_root_dir=tmp_path)
    trainer.fit(module, _data(train, 1), _data(40, 2))
    trainer.test(module, _data(24, 3), verbose=False)
    return callback


RANK_ZERO_LOGGER = "pytorch_lightning.utilities.rank_zero"  # where rank_zero_info writes the plan's line


def test_default_plan_is_a_budgeted_probe_and_the_test_curve_is_full(tmp_path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=RANK_ZERO_LOGGER):  # whatever level an earlier test left it at
        callback = _fit_and_test(tmp_path)
    probe = evaluation_passes({"fgsm": FGSM()}, [20.0])
    allowed = 0.1 * 96 * TRAINING_PASS / probe  # images an epoch within 10 % of the training passes: 4.8
    plan = callback.val_plan
    assert plan.every_n_epochs == 2  # 100 images would take 21 epochs: as rare as a 2-epoch run allows
    assert plan.subset == int(2 * allowed) == 9 and plan.share <= 0.1
    val, test = (callback.results()["robustness"][stage] for stage in ("val", "test"))
    assert val["n"] == plan.subset and set(val["attacks"]) == {"fgsm"}
    assert list(val["attacks"]["fgsm"]["acc"]) == ["snr20"]  # one level: the strongest
    assert test["n"] == 24 and set(test["attacks"]) == {"fgsm", "pgd"}
    assert list(test["attacks"]["pgd"]["acc"]) == ["snr40", "snr30", "snr20"]
    lines = [r.getMessage() for r in caplog.records if "robustness on validation" in r.getMessage()]
    assert len(lines) == 1 and f"on {plan.subset} of 40 images" in lines[0] and "eval.val_budget=0.1" in lines[0]


def test_explicit_settings_win_and_change_nothing_on_the_test_split(tmp_path, caplog) -> None:
    """The old default (every attack, every level, every epoch) against the budget's: same test numbers."""
    with caplog.at_level(logging.INFO, logger=RANK_ZERO_LOGGER):  # whatever level an earlier test left it at
        full = _fit_and_test(tmp_path, val_subset=32, val_every_n_epochs=1, val_attacks="all", val_snr_levels="all")
    assert (full.val_plan.subset, full.val_plan.every_n_epochs) == (32, 1) and full.val_plan.share > 0.1
    val = full.results()["robustness"]["val"]
    assert val["n"] == 32 and set(val["attacks"]) == {"fgsm", "pgd"} and len(val["attacks"]["pgd"]["acc"]) == 3
    line = next(r.getMessage() for r in caplog.records if "robustness on validation" in r.getMessage())
    assert "(over the budget)" in line and "eval.val_subset as set" in line and "eval.val_attacks as set" in line
    budgeted = _fit_and_test(tmp_path)
    assert budgeted.results()["robustness"]["test"] == full.results()["robustness"]["test"]
    assert (budgeted.records["test"].clean == full.records["test"].clean).all()


def test_explicit_images_get_a_frequency_within_the_budget(tmp_path) -> None:
    callback = _fit_and_test(tmp_path, epochs=3, val_subset=12)  # 4.8 images an epoch within the budget
    assert callback.val_plan.subset == 12 and callback.val_plan.every_n_epochs == 3 and callback.val_plan.share <= 0.1
    assert callback.results()["robustness"]["val"]["n"] == 12


def test_adversarial_training_counts_its_extra_passes() -> None:
    from adv_smooth.defenses import Compose
    from adv_smooth.defenses.adversarial import AdversarialTraining

    defense = Compose([AdversarialTraining(fraction=0.5)])
    assert defense.extra_passes_per_image() == pytest.approx(0.5 * FGSM().passes_per_image(1))


def test_loader_images_counts_limits_and_processes() -> None:
    loader = _data(100, 0)  # 7 batches of 16
    assert loader_images(loader, float("inf")) == 100
    assert loader_images([loader], [3]) == 48 and loader_images(loader, 3, world_size=2) == 96
    assert loader_images(None, 1) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"val_attacks": ["cw"]}, r"^val_attacks=\['cw'\] is invalid: .*\(fgsm, pgd\)"),
        ({"val_attacks": "some"}, "^val_attacks='some'"),
        ({"val_snr_levels": [0]}, r"^val_snr_levels=\[0\]"),
        ({"val_budget": 0}, "^val_budget=0 is invalid"),
        ({"val_subset": -1}, "^val_subset=-1"),
        ({"val_every_n_epochs": 0}, "^val_every_n_epochs=0"),
    ],
)
def test_bad_validation_settings_are_refused(options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        validation_request({"fgsm": FGSM(), "pgd": PGD()}, [33.0], **options)
