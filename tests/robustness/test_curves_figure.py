"""The accuracy-vs-SNR figure (robustness_test.png, TensorBoard's */robustness_vs_snr): readable as drawn."""

from __future__ import annotations

from adv_smooth.robustness.curves import accuracy_vs_snr_figure
from adv_smooth.utils.plotting import MARKERS


def _summary(levels: list[int], acc: dict[str, list[float]], worst: list[float]) -> dict:
    keys = [f"snr{lv}" for lv in levels]
    attacks = {name: {"levels": levels, "acc": dict(zip(keys, values))} for name, values in acc.items()}
    return {"n": 100, "clean_acc": 0.9, "attacks": attacks, "worst": {"acc": dict(zip(keys, worst))}}


def test_an_attack_that_is_the_worst_case_stays_visible() -> None:
    summary = _summary([33, 20], {"fgsm": [0.8, 0.5], "pgd": [0.7, 0.4], "pgd_l2": [0.6, 0.1]}, [0.6, 0.1])
    (ax,) = accuracy_vs_snr_figure(summary).axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    styles = {(lines[n].get_marker(), lines[n].get_linestyle()) for n in ("fgsm", "pgd", "pgd_l2")}
    assert len(styles) == 3 and all(m in MARKERS for m, _ in styles), "a marker and a dash per attack"
    worst = lines["worst (per image)"]
    assert worst.get_zorder() < lines["pgd_l2"].get_zorder() and worst.get_alpha() < 1, "a band under the lines"
    assert worst.get_linewidth() > 3 * lines["pgd_l2"].get_linewidth()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["20", "33"] and ax.xaxis_inverted()
    low, high = ax.get_ylim()
    assert low >= 0 and high <= 101


def test_a_single_level_figure_has_its_level_as_an_integer_tick_and_room_around_it() -> None:
    (ax,) = accuracy_vs_snr_figure(_summary([20], {"fgsm": [0.067]}, [0.067])).axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["20"]
    left, right = ax.get_xlim()
    assert left - right >= 6 and left > 20 > right, "a few dB either side, noise growing to the right"
    assert ax.get_ylim()[0] >= 0
    assert not any(line.get_clip_on() for line in ax.get_lines()), "a marker at 0 % is drawn whole"


def test_a_minimal_snr_curve_read_back_from_json_is_drawn_in_snr_order() -> None:
    """results.json may hold the curve's keys sorted as text ("10.0" before "5.0"): drawn by SNR, not zigzagging."""
    summary = _summary([20], {"fgsm": [0.5]}, [0.5])
    summary["attacks"]["fmn"] = {"min_snr": {"curve": {"10.0": 0.1, "20.0": 0.5, "30.0": 0.9, "5.0": 0.0}}}
    (ax,) = accuracy_vs_snr_figure(summary).axes
    (line,) = [line for line in ax.get_lines() if line.get_label() == "fmn (minimal SNR)"]
    assert list(line.get_xdata()) == [5.0, 10.0, 20.0, 30.0]
