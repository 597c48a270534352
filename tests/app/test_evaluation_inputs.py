"""`app/evaluation_inputs.py`: the command line's overrides laid on a trained run's saved config."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from adv_smooth.app.build import build_evaluation_callbacks
from adv_smooth.app.evaluation_inputs import apply_overrides
from tests.conftest import compose_config


def _saved(tmp_path: Path, *overrides: str):
    """A training run's config as its run dir holds it (`.hydra/config.yaml`)."""
    path = tmp_path / "config.yaml"
    OmegaConf.save(compose_config(*overrides, output_dir=tmp_path), path)
    return OmegaConf.load(path)


def test_an_eval_override_reaches_a_callback_option_the_run_set_on_its_node(tmp_path: Path) -> None:
    """The run set `callbacks.robustness.snr_levels` itself: evaluated as it is, or at the levels asked for."""
    pinned = ("callbacks.robustness.snr_levels=[40]", "callbacks.test_subset.n=9")
    kept = apply_overrides(_saved(tmp_path, *pinned), compose_config(output_dir=tmp_path), ["eval.cascade=true"])
    assert build_evaluation_callbacks(kept).robustness.levels == [40.0]  # the run's own, nothing asked otherwise
    asked = ["eval.snr_levels=[30,20]", "eval.test_subset=5"]
    cfg = apply_overrides(_saved(tmp_path, *pinned), compose_config(*asked, output_dir=tmp_path), asked)
    built = build_evaluation_callbacks(cfg)
    assert built.robustness.levels == [30.0, 20.0] and built.test_subset.n == 5
    command = compose_config("eval=report", output_dir=tmp_path)  # a preset: every eval option is asked for
    group = apply_overrides(_saved(tmp_path, *pinned), command, ["eval=report"])
    levels = build_evaluation_callbacks(group).robustness.levels
    assert levels == [float(s) for s in command.eval.snr_levels] and levels != [40.0]
