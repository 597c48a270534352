"""The certificate check: PGD on the smoothed classifier never breaks a certificate inside its radius, and breaks
the same images just outside the true one (the attack is strong enough to mean something)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adv_smooth.robustness.certificate_check import broken_inside
from adv_smooth.robustness.certify import Certifier, build_certifier
from adv_smooth.utils.errors import UserError
from tests.robustness.test_certify import _linear_problem


def test_no_certificate_of_a_linear_classifier_breaks_inside_its_radius() -> None:
    sigma = 0.5
    model, x, _ = _linear_problem(40, sigma, seed=3)
    certifier = Certifier(sigma=sigma, n0=50, n=1000, check_steps=10, check_draws=32)
    certifier.generator = torch.Generator().manual_seed(11)
    cert = certifier.certify(model, x)
    assert cert.broken is not None and (cert.broken >= 0).sum() >= 30, "most images certified and checked"
    assert (cert.broken[cert.radius == 0] == -1).all()
    assert (cert.broken == 1).sum() == 0


def test_the_same_attack_breaks_them_beyond_the_true_radius() -> None:
    sigma = 0.5
    model, x, true_radius = _linear_problem(40, sigma, seed=3)
    certifier = Certifier(sigma=sigma, n=1000, check_steps=10, check_draws=32)
    certifier.generator = torch.Generator().manual_seed(12)
    side = (x.flatten(1) @ model.w + model.b > 0).long()
    sigmas = certifier.sigmas(x)
    broken = broken_inside(certifier, model, x, side, 2.0 * true_radius, sigmas)
    far = true_radius > 0.5 * sigma  # the other side's probability there is Phi(R*/sigma) > 0.69: confidently so
    assert (broken[far] == 1).all(), broken
    assert (broken[~far] >= 0).all()


def test_summary_counts_the_check_and_options_are_checked() -> None:
    from adv_smooth.robustness.certify import certificate_arrays, summarize_certified

    model, x, _ = _linear_problem(10, 0.5, seed=4)
    certifier = build_certifier({"sigma": 0.5, "n0": 20, "n": 200, "check_steps": 3, "check_draws": 8})
    cert = certifier.certify(model, x)
    label = (x.flatten(1) @ model.w + model.b > 0).long().numpy()
    check = summarize_certified(label, certificate_arrays(cert), [40.0], certifier)["check"]
    assert check["checked"] == int((cert.radius > 0).sum()) and check["broken"] == 0
    assert (check["steps"], check["draws"]) == (3, 8)
    for bad in ({"check_steps": -1}, {"check_draws": 0}):
        with pytest.raises(UserError) as error:
            build_certifier(bad)
        assert str(error.value).startswith(f"{next(iter(bad))}=") and "\n" not in str(error.value)
    assert np.array_equal(certificate_arrays(cert)["broken"], cert.broken)


def test_the_sandwich_on_a_linear_classifier_brackets_its_true_robust_accuracy() -> None:
    """Certified (lower) <= true robust accuracy of g (the share farther from the hyperplane than the level's
    radius: g is the linear classifier itself) <= PGD on g (upper), at every level; no certified image broken."""
    from adv_smooth.robustness.certify import certificate_arrays, summarize_certified

    sigma, levels = 0.5, [30.0, 20.0, 15.0]
    model, x, true_radius = _linear_problem(60, sigma, seed=5)
    certifier = Certifier(sigma=sigma, n0=50, n=1000, check_steps=10, check_draws=32, empirical=True, levels=levels)
    certifier.generator = torch.Generator().manual_seed(13)
    label = (x.flatten(1) @ model.w + model.b > 0).long().numpy()
    summary = summarize_certified(label, certificate_arrays(certifier.certify(model, x)), levels, certifier)
    norm = x.flatten(1).norm(dim=1).numpy()
    for s in levels:
        key = f"snr{int(s)}"
        true_acc = float((true_radius > norm * 10 ** (-s / 20)).mean())
        assert summary["acc"][key] <= true_acc <= summary["empirical_acc"][key], (s, summary)
        assert summary["empirical_acc"][key] - true_acc <= 0.1, "PGD finds the hyperplane: the bounds are close"
    assert summary["violations"] == {"snr30": 0, "snr20": 0, "snr15": 0} and summary["honesty"] == []
    assert summary["acc"]["snr15"] < summary["acc"]["snr30"], "the levels span radii that matter"


def test_a_certified_image_broken_at_its_level_is_a_warning() -> None:
    from adv_smooth.robustness.certify import summarize_certified

    certifier = Certifier(sigma=0.5, check_steps=1, empirical=True, levels=[30.0])
    certified = {
        "prediction": np.array([1, 1, 0]),
        "snr_db": np.array([25.0, 35.0, 20.0]),  # the first is certified at 30 dB, the second not
        "empirical_snr30": np.array([1, 1, 0], dtype=np.int8),
    }
    summary = summarize_certified(np.array([1, 1, 1]), certified, [30.0], certifier)
    assert summary["violations"] == {"snr30": 1} and summary["empirical_acc"] == {"snr30": 0.0}
    assert len(summary["honesty"]) == 1 and "broke 1 image(s) certified there" in summary["honesty"][0]["message"]


def test_the_cost_counts_every_pgd_run() -> None:
    assert Certifier(n0=100, n=1000).passes_per_image() == 1100
    assert Certifier(n0=100, n=1000, check_steps=10, check_draws=16).passes_per_image() == 1100 + 320 + 1000
    both = Certifier(n0=100, n=1000, check_steps=10, check_draws=16, empirical=True, levels=[40.0, 30.0])
    assert both.passes_per_image() == 1100 + 3 * (320 + 1000)


def test_a_broken_certificate_is_one_of_the_runs_honesty_warnings() -> None:
    """Through the engine: a certificate broken at its level (planted in the records) is a warning of the run's
    own `honesty` list, which the callback warns about and results.json, the summary and the report carry."""
    from adv_smooth.attacks.fgsm import FGSM
    from adv_smooth.robustness.evaluator import Evaluator

    model, x, _ = _linear_problem(12, 0.5, seed=2)
    y = (x.flatten(1) @ model.w + model.b > 0).long()
    certifier = Certifier(sigma=0.5, n0=20, n=100, check_steps=1, check_draws=4, empirical=True, levels=[20.0])
    engine = Evaluator({"fgsm": FGSM()}, [20.0], certifier=certifier)
    records = engine.run(model, [(x, y)])
    assert not any(w["check"] == "certified_broken" for w in engine.summarize(records)["honesty"])
    held = (records.certified["prediction"] == records.label) & (records.certified["snr_db"] <= 20.0)
    assert held.any(), "some image is certified at 20 dB"
    records.certified["empirical_snr20"][np.flatnonzero(held)[0]] = 1  # PGD "broke" a certified image
    (warning,) = [w for w in engine.summarize(records)["honesty"] if w["check"] == "certified_broken"]
    assert warning["attack"] == "certified" and "broke 1 image(s) certified there" in warning["message"]
