"""The registry, and the per-batch evaluation pieces a callback accumulates."""

from __future__ import annotations

import math

import pytest
import torch

from adv_smooth.attacks import ATTACKS, FGSM, PGD, GaussianNoise, build_attack, cumulative_correct, robust_predictions
from adv_smooth.errors import UserError


def test_registry_builds_every_attack() -> None:
    assert set(ATTACKS) == {"fgsm", "pgd", "noise"}
    assert isinstance(build_attack("fgsm", magnitude="uniform"), FGSM)
    assert build_attack("pgd", steps=3).steps == 3
    assert isinstance(build_attack("noise"), GaussianNoise)


def test_unknown_attack_is_a_one_line_user_error() -> None:
    with pytest.raises(UserError) as info:
        build_attack("cw")
    message = str(info.value)
    assert "'cw'" in message and "fgsm" in message and "pgd" in message and "noise" in message
    assert "\n" not in message


def test_cumulative_correct_is_a_running_and() -> None:
    t, f = True, False
    clean = torch.tensor([t, t, t, f])
    c50 = torch.tensor([t, f, t, t])
    c45 = torch.tensor([t, t, f, t])
    out = cumulative_correct([clean, c50, c45])
    assert [o.tolist() for o in out] == [[t, t, t, f], [t, f, t, f], [t, f, f, f]]
    assert cumulative_correct([]) == []


def test_robust_predictions_per_batch(resnet, images, labels) -> None:
    resnet.train()
    out = robust_predictions(resnet, images, labels, PGD(steps=2), [33.0, 50.0, 40.0])
    assert out["levels"] == [50.0, 40.0, 33.0], "weak (high SNR) to strong"
    n = images.shape[0]
    assert out["clean"].dtype == torch.bool and out["clean"].shape == (n,)
    previous = out["clean"]
    for level in out["levels"]:
        assert out["correct"][level].shape == (n,)
        assert torch.equal(out["cumulative"][level], previous & out["correct"][level])
        previous = out["cumulative"][level]
        assert out["measured_snr_db"][level].shape == (n,)
        assert math.isfinite(out["measured_snr_db_mean"][level])
        assert out["measured_snr_db_mean"][level] >= level - 1e-3  # clamping only removes energy
    assert resnet.training, "the model's mode is restored"


def test_robust_predictions_scores_in_eval_mode(resnet, images, labels) -> None:
    resnet.eval()
    with torch.no_grad():
        expected = resnet(images).argmax(1) == labels
    resnet.train()
    assert torch.equal(robust_predictions(resnet, images, labels, FGSM(), [40.0])["clean"], expected)
