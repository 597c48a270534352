"""The honesty checks fire on the report's suspicious patterns and stay silent on a sane curve."""

from __future__ import annotations

from adv_smooth.robustness.honesty import Traits, check_curves, level_key

SINGLE = Traits(norm="linf", iterative=False)
ITERATIVE = Traits(norm="linf", iterative=True)


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
    assert [w for w in check_curves(0.9, curves) if w["check"] == "iterative_weaker"] == [], "no traits, no rule"
    (w,) = [
        w for w in check_curves(0.9, curves, {"fgsm": SINGLE, "pgd": ITERATIVE}) if w["check"] == "iterative_weaker"
    ]
    assert "40 dB" in w["message"] and "60.00 %" in w["message"]
    leak = check_curves(0.80, {"fgsm": {33: 0.85}})
    assert [w["check"] for w in leak] == ["above_clean"] and "Kurakin" in leak[0]["message"]


def test_level_keys() -> None:
    assert level_key(33.0) == "snr33" and level_key(22.5) == "snr22.5"


# -- checks on per-image records, by attribute ------------------------------------------------------------
def _records(n: int = 200, **attacks):
    import numpy as np

    from adv_smooth.robustness.records import AttackRecords, Records

    label = np.zeros(n, dtype=np.int64)
    rec = Records(index=np.arange(n), label=label, clean_pred=label.copy(), zero_grad=np.zeros(n, dtype=bool))
    for name, (levels, correct) in attacks.items():
        adv = np.array(correct, dtype=np.int8).reshape(len(levels), n)
        rec.attacks[name] = AttackRecords(levels, adv, np.full(adv.shape, 30.0, dtype=np.float32))
    return rec


def _mask(n: int, broken: int):
    import numpy as np

    out = np.ones(n, dtype=np.int8)
    out[:broken] = 0
    return out


def test_gradient_free_attack_beating_a_gradient_attack_fires_whatever_their_names() -> None:
    from adv_smooth.robustness.honesty import check_records

    rec = _records(a1=([30.0], _mask(200, 10)), zz=([30.0], _mask(200, 60)))
    traits = {"a1": Traits(norm="l2", iterative=True), "zz": Traits(norm="linf", iterative=True, uses_gradients=False)}
    (w,) = check_records(rec, traits)
    assert w["check"] == "gradient_free_stronger" and "zz (gradient-free)" in w["message"] and "a1" in w["message"]
    # the other way round is how it should be: silent
    rec = _records(a1=([30.0], _mask(200, 60)), zz=([30.0], _mask(200, 10)))
    assert check_records(rec, traits) == []


def test_linf_iterative_attack_is_not_expected_to_beat_an_l2_single_step() -> None:
    """The L-inf cube is inside the L2 ball: an L-inf attack may be weaker than an L2 one, never the reverse."""
    from adv_smooth.robustness.honesty import check_records

    rec = _records(pgd_linf=([30.0], _mask(200, 10)), fgm_l2=([30.0], _mask(200, 50)))
    traits = {"pgd_linf": Traits(norm="linf", iterative=True), "fgm_l2": Traits(norm="l2", iterative=False)}
    assert check_records(rec, traits) == []
    traits = {"pgd_linf": Traits(norm="l2", iterative=True), "fgm_l2": Traits(norm="linf", iterative=False)}
    assert [w["check"] for w in check_records(rec, traits)] == ["iterative_weaker"]


def test_zero_gradients_sanity_and_minimal_norm_checks() -> None:
    import numpy as np

    from adv_smooth.robustness.honesty import check_records

    rec = _records(pgd=([30.0, 20.0], np.concatenate([_mask(200, 0), _mask(200, 40)])))
    traits = {"pgd": Traits(iterative=True)}
    assert check_records(rec, traits) == []
    rec.zero_grad[:50] = True
    rec.sanity_level, rec.sanity_correct = 0.0, {"pgd": np.r_[np.ones(60, bool), np.zeros(140, bool)]}
    checks = {w["check"]: w["message"] for w in check_records(rec, traits)}
    assert "25.0 %" in checks["zero_gradients"] and "DLR" in checks["zero_gradients"]
    assert "30.0 % accuracy at 0 dB" in checks["unbounded_sanity"]
    # a minimum-norm attack that calls images robust at 20 dB that PGD breaks there
    from adv_smooth.robustness.records import AttackRecords

    min_snr = np.full(200, 10.0, dtype=np.float32)  # "robust down to 10 dB"
    rec = _records(pgd=([30.0, 20.0], np.concatenate([_mask(200, 0), _mask(200, 40)])))
    never_broken = np.ones((2, 200), np.int8)
    rec.attacks["fmn"] = AttackRecords([30.0, 20.0], never_broken, np.zeros((2, 200), np.float32), min_snr)
    traits = {"pgd": Traits(norm="linf", iterative=True), "fmn": Traits(norm="l2", iterative=True, minimal_norm=True)}
    (w,) = [w for w in check_records(rec, traits) if w["check"] == "minimal_norm_too_weak"]
    assert "pgd breaks 20.0 % of the images at 20 dB that fmn called robust" in w["message"]


def test_noise_drawn_at_random_is_chance_not_a_masked_gradient() -> None:
    """Natural noise on a weak model may score above clean or rise with the noise by luck on a few images: the
    shape rules stay quiet for it (the same curve from an adversary fires), and an adversary it beats is flagged."""
    rising = {40: 0.27, 30: 0.30, 20: 0.30}
    noise = Traits(norm="l2", uses_gradients=False, searched=False)
    assert check_curves(0.2667, {"noise_gaussian": rising}, {"noise_gaussian": noise}) == []
    fired = {w["check"] for w in check_curves(0.2667, {"pgd": rising}, {"pgd": ITERATIVE})}
    assert fired == {"non_monotone", "above_clean"}
    pgd_l2 = Traits(norm="l2", iterative=True)
    beaten = check_curves(0.9, {"pgd_l2": {33: 0.6}, "noise": {33: 0.4}}, {"pgd_l2": pgd_l2, "noise": noise})
    assert [w["check"] for w in beaten] == ["gradient_free_stronger"]


def test_traits_of_natural_noise_say_drawn() -> None:
    from adv_smooth.attacks.natural import NaturalNoise
    from adv_smooth.attacks.pgd import PGD

    assert Traits.of(NaturalNoise(kind="impulse")).searched is False and Traits.of(PGD()).searched is True
