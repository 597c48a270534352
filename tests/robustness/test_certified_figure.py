"""The accuracy-vs-SNR figure draws the smoothed classifier's two bounds when the evaluation certified."""

from __future__ import annotations

from adv_smooth.robustness.curves import accuracy_vs_snr_figure


def _summary(certified: dict | None) -> dict:
    summary = {
        "n": 10,
        "clean_acc": 0.9,
        "attacks": {"pgd": {"levels": [40.0, 30.0], "acc": {"snr40": 0.8, "snr30": 0.6}}},
        "worst": {"acc": {"snr40": 0.8, "snr30": 0.6}},
    }
    return summary if certified is None else {**summary, "certified": certified}


def test_certified_and_smoothed_attack_curves_are_drawn_at_their_levels() -> None:
    fig = accuracy_vs_snr_figure(
        _summary({"acc": {"snr40": 0.7, "snr30": 0.2}, "empirical_acc": {"snr40": 0.75, "snr30": 0.5}})
    )
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines["certified (smoothed)"].get_ydata()) == [20.0, 70.0]
    assert list(lines["PGD on the smoothed"].get_xdata()) == [30.0, 40.0]
    plain = {line.get_label() for line in accuracy_vs_snr_figure(_summary(None)).axes[0].get_lines()}
    assert "certified (smoothed)" not in plain
