"""`perf: auto` (adv_smooth/models/perf.py: resolve_perf): what a GPU run gets without asking, what a CPU run keeps."""

from __future__ import annotations

import pytest

from adv_smooth.models.perf import resolve_perf
from adv_smooth.utils.errors import UserError


def test_auto_is_on_for_a_gpu_and_off_for_a_cpu() -> None:
    assert resolve_perf("auto", "auto", 100, device="cuda:0", planned_steps=99)["channels_last"] is True
    assert resolve_perf("auto", "auto", 100, device="cpu", planned_steps=10**6) == {
        "channels_last": False,
        "compile": False,
        "compile_options": None,
    }


def test_auto_compiles_only_fits_long_enough_to_repay_it() -> None:
    assert resolve_perf(compile="auto", compile_min_steps=100, device="cuda", planned_steps=99)["compile"] is False
    assert resolve_perf(compile="auto", compile_min_steps=100, device="cuda", planned_steps=100)["compile"] is True
    assert resolve_perf(compile="auto", compile_min_steps=100, device="cuda", planned_steps=None)["compile"] is False


def test_explicit_values_win_and_a_missing_trainer_means_off() -> None:
    assert resolve_perf(True, True, device=None) == {"channels_last": True, "compile": True, "compile_options": None}
    assert resolve_perf("auto", "auto")["channels_last"] is False


@pytest.mark.parametrize(("key", "value"), [("channels_last", "yes"), ("compile", 1), ("compile_min_steps", -1)])
def test_bad_values_name_the_key(key: str, value: object) -> None:
    with pytest.raises(UserError, match=rf"^{key}="):
        resolve_perf(**{key: value})
