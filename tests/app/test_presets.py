"""The `eval` presets read without Hydra (`app/presets.py`) hold exactly what Hydra composes from the same
files: one source of truth for `evaluate_model` and the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adv_smooth.app.presets import load_preset, preset_names
from adv_smooth.utils.errors import UserError
from tests.conftest import compose_config


def test_the_shipped_presets_are_found() -> None:
    assert {"default", "report", "strong", "minimal"} <= set(preset_names())


@pytest.mark.parametrize("preset", preset_names())
def test_a_preset_reads_as_hydra_composes_it(preset: str) -> None:
    composed = OmegaConf.to_container(compose_config(f"eval={preset}", "dataset=cifar10").eval, resolve=True)
    composed.pop("checkpoint")  # set by config.yaml, not by the preset
    assert load_preset(preset) == composed


def test_an_unknown_preset_names_the_choices() -> None:
    with pytest.raises(UserError, match=r"preset='fast' is not an eval preset \(one of \[.*'default'"):
        load_preset("fast")


def test_a_defaults_entry_it_cannot_read_is_refused(tmp_path: Path) -> None:
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "odd.yaml").write_text("defaults:\n  - optional /attack@attacks.x: fgsm\n")
    with pytest.raises(UserError, match="is not read here"):
        load_preset("odd", conf=tmp_path)
