"""The honesty checks fire on the report's suspicious patterns and stay silent on a sane curve."""

from __future__ import annotations

from adv_smooth.honesty import check_curves, level_key


def test_silent_on_a_monotone_curve() -> None:
    curves = {"fgsm": {50: 0.95, 45: 0.93, 40: 0.88, 33: 0.78}, "pgd": {50: 0.94, 45: 0.90, 40: 0.80, 33: 0.60}}
    assert check_curves(0.98, curves) == []


def test_fires_on_the_reports_adv_smooth_row() -> None:
    # Table 1, adv + smooth, gamma=0.001, m=2: 97.25 clean, then 94.43 / 95.59 / 96.49 / 96.45.
    curves = {"fgsm": {50: 0.9443, 45: 0.9559, 40: 0.9649, 33: 0.9645}}
    warnings = check_curves(0.9725, curves)
    checks = [w["check"] for w in warnings]
    assert checks.count("non_monotone") == 2  # 50 -> 45 and 45 -> 40 rise; 40 -> 33 is within tolerance
    assert "45 dB" in warnings[0]["message"] and "Carlini" in warnings[0]["message"]


def test_fires_when_pgd_is_weaker_than_fgsm_and_on_label_leaking() -> None:
    curves = {"fgsm": {40: 0.50, 33: 0.40}, "pgd": {40: 0.60, 33: 0.35}}
    (w,) = [w for w in check_curves(0.9, curves) if w["check"] == "iterative_weaker"]
    assert "40 dB" in w["message"] and "60.00 %" in w["message"]
    leak = check_curves(0.80, {"fgsm": {33: 0.85}})
    assert [w["check"] for w in leak] == ["above_clean"] and "Kurakin" in leak[0]["message"]


def test_level_keys() -> None:
    assert level_key(33.0) == "snr33" and level_key(22.5) == "snr22.5"
