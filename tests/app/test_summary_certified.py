"""The printed summary puts the certified accuracy (a lower bound, the smoothed classifier) under the attacks."""

from __future__ import annotations

from adv_smooth.app.summary import robustness_table


def test_certified_row_sits_under_the_attacks_with_its_own_clean_column() -> None:
    robustness = {
        "clean_acc": 0.9,
        "attacks": {"pgd": {"acc": {"snr40": 0.8, "snr30": 0.5}}},
        "worst": {"acc": {"snr40": 0.8, "snr30": 0.5}},
        "certified": {
            "acc": {"snr40": 0.6, "snr30": 0.25},
            "smoothed_clean_acc": 0.7,
            "abstain": 0.125,
            "sigma": 0.25,
            "sigma_snr": None,
            "n": 1000,
            "alpha": 0.001,
        },
    }
    lines = robustness_table(robustness)
    row = next(line for line in lines if line.startswith("certified "))
    assert row.split()[1:] == ["70.00", "60.00", "25.00"]
    assert lines.index(row) > next(i for i, line in enumerate(lines) if line.startswith("worst"))
    assert any("sigma 0.25, n=1000, alpha=0.001" in line and "12.5 % abstained" in line for line in lines)
    robustness["certified"]["check"] = {"broken": 0, "checked": 7}
    assert any("broke 0 of 7 certificates" in line for line in robustness_table(robustness))
    del robustness["certified"]
    assert not any(line.startswith("certified") for line in robustness_table(robustness))
