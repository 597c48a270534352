"""The attacks and levels of an evaluation, checked: the SNR levels, the attacks run when none are given.

The attacks themselves come built (the entry points build them from `eval.attacks`: `app/build.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adv_smooth.attacks.base import Attack
from adv_smooth.utils.errors import is_number, require


def default_attacks() -> dict[str, Attack]:
    """The attacks of an evaluation given none: FGSM and PGD (without its FGSM start)."""
    from adv_smooth.attacks.fgsm import FGSM
    from adv_smooth.attacks.pgd import PGD

    return {"fgsm": FGSM(), "pgd": PGD(include_fgsm=False)}


def check_levels(snr_levels: Any) -> list[float]:
    """The SNR levels as floats: a non-empty list of finite numbers > 0 (dB)."""
    ok = isinstance(snr_levels, Sequence) and not isinstance(snr_levels, str) and len(snr_levels) > 0
    ok = ok and all(is_number(s) and s > 0 for s in snr_levels)
    shown = list(snr_levels) if isinstance(snr_levels, Sequence) and not isinstance(snr_levels, str) else snr_levels
    require(ok, "snr_levels", shown, "a non-empty list of finite SNRs in dB, each > 0, e.g. [50,45,40,33]")
    return [float(s) for s in snr_levels]
