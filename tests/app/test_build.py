"""`app/build.py`: the callbacks that test a network are built from the config as training builds them."""

from __future__ import annotations

from pathlib import Path

from adv_smooth.app.build import build_evaluation_callbacks
from tests.conftest import compose_config


def test_the_callbacks_read_the_eval_keys_through_the_run_s_nodes(tmp_path: Path) -> None:
    cfg = compose_config("eval.snr_levels=[33,45]", "eval.test_subset=7", "eval.cascade=true", output_dir=tmp_path)
    built = build_evaluation_callbacks(cfg, val_subset=0)
    assert built.test_subset.n == 7
    assert built.robustness.levels == [45.0, 33.0] and built.robustness.cascade  # weak to strong
    assert built.robustness.val_subset == 0  # the override: an evaluation validates nothing


def test_a_run_that_removed_a_callback_is_still_tested_under_its_own_eval(tmp_path: Path) -> None:
    """A run trained with `~callbacks.robustness ~callbacks.test_subset` (no robustness evaluation) saved no node:
    the package's own nodes read that run's `eval`, and the run's config is left as it was saved."""
    cfg = compose_config(
        "~callbacks.robustness", "~callbacks.test_subset", "eval.snr_levels=[40]", "eval.test_subset=5",
        output_dir=tmp_path,
    )  # fmt: skip
    built = build_evaluation_callbacks(cfg)
    assert built.robustness.levels == [40.0] and built.test_subset.n == 5
    assert "robustness" not in cfg.callbacks and "test_subset" not in cfg.callbacks


def test_building_leaves_the_config_as_it_was(tmp_path: Path) -> None:
    """Hydra resolves what `${oc.select:eval.certify,null}` selects in place: the evaluation vets the command's own
    config first, and a certification noise level fixed there would then be copied onto the trained run's."""
    cfg = compose_config("eval=certified", output_dir=tmp_path)
    before = cfg.eval.certify._get_node("sigma")._value()  # noqa: SLF001 - the unresolved interpolation
    build_evaluation_callbacks(cfg)
    assert cfg.eval.certify._get_node("sigma")._value() == before == "${oc.select:defense.noise_sigma,0.25}"  # noqa: SLF001
