"""Attacks built from their YAML (no registry), and the per-batch evaluation pieces a callback accumulates."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from adv_smooth.app.build import build_attacks
from adv_smooth.attacks import FGSM, PGD, Attack, GaussianNoise
from adv_smooth.robustness.batch import cumulative_correct, robust_predictions
from adv_smooth.utils.errors import UserError

CONF = Path(__file__).resolve().parents[2] / "conf" / "attack"


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_attack_yaml_builds_its_attack(path: Path) -> None:
    """Discovered, not listed: a new conf/attack/*.yaml is tested without editing this file."""
    config = OmegaConf.to_container(OmegaConf.load(path))
    (attack,) = build_attacks({path.stem: config}).values()
    assert isinstance(attack, Attack) and type(attack).__name__ == config["_target_"].rsplit(".", 1)[1]
    assert attack.norm == config.get("norm", "linf")


def test_attacks_are_built_from_targets_and_options() -> None:
    built = build_attacks(
        {
            "f": {"_target_": "adv_smooth.attacks.fgsm.FGSM", "magnitude": "uniform"},
            "p": {"_target_": "adv_smooth.attacks.pgd.PGD", "steps": 3, "norm": "l2"},
            "n": GaussianNoise(),
        }
    )
    assert isinstance(built["f"], FGSM) and built["f"].magnitude == "uniform"
    assert isinstance(built["p"], PGD) and built["p"].steps == 3 and built["p"].norm == "l2"
    assert isinstance(built["n"], GaussianNoise)


@pytest.mark.parametrize(
    ("attacks", "expected"),
    [
        ({"cw": {}}, "eval.attacks.cw={} is invalid: expected an attack config with a _target_"),
        ({"p": {"_target_": "adv_smooth.attacks.pgd.PGD", "steps": -1}}, "eval.attacks.p.steps=-1 is invalid"),
        ({"p": {"_target_": "adv_smooth.attacks.pgd.PGD", "norm": "l3"}}, "eval.attacks.p.norm='l3' is invalid"),
        ({"p": {"_target_": "adv_smooth.attacks.pgd.PGD", "stepz": 3}}, "eval.attacks.p.stepz is not an option"),
        (
            {"p": {"_target_": "adv_smooth.attacks.pgd.PGD", "budget": "fixed", "norm": "l2", "radius": -0.5}},
            "eval.attacks.p.radius=-0.5 is invalid",
        ),
        ({"p": {"_target_": "adv_smooth.attacks.nope.Nope"}}, "eval.attacks.p: cannot build adv_smooth.attacks.nope"),
        ({"p": {"_target_": "os.system", "command": "touch /tmp/pwned"}}, "eval.attacks.p._target_='os.system' is"),
        ({"p": {"_target_": "torch.nn.Linear"}}, "expected an attack class"),
    ],
)
def test_bad_attack_configs_are_one_line_user_errors(attacks: dict, expected: str) -> None:
    with pytest.raises(UserError) as info:
        build_attacks(attacks)
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


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


def test_an_attack_entry_without_a_target_names_the_option_to_add_it() -> None:
    import pytest

    from adv_smooth.app.build import build_attacks
    from adv_smooth.utils.errors import UserError

    with pytest.raises(UserError, match=r"e\.g\. \+attack@eval\.attacks\.mine=apgd\)$"):
        build_attacks({"mine": {"steps": 3}})
