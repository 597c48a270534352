"""Bad values for the reproduction options fail at start-up: one line naming the key, the value and what is
allowed, exit status 2, before any data is loaded (the real entry point, in this process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adv_smooth.app.preflight.checks import check_config
from tests.conftest import compose_config
from tests.test_bad_inputs import error_lines, run_main

CASES: list[tuple[list[str], str]] = [
    (
        ["defense=adv", "defense.magnitude=gauss"],
        "defense.magnitude='gauss' is invalid: one of sign, truncated_normal, uniform, clipped_normal",
    ),
    (["defense=adv_smooth", "defense.bn_mode=train"], "defense.bn_mode='train' is invalid: one of eval, keep"),
    (["defense=adv", "defense.separate_passes=yes"], "defense.separate_passes='yes' is invalid: true or false"),
    (["defense=smooth", "defense.knn_self=1"], "defense.knn_self=1 is invalid: true or false"),
    (["defense=smooth", "defense.k=1", "defense.knn_self=true"], "defense.k=1 is invalid"),
    (["dataset.val_fraction=0"], "eval.checkpoint='best' is invalid: dataset.val_fraction=0 leaves no validation"),
    (["experiment=cifar10_lpn", "eval.checkpoint=best"], "eval.checkpoint='best' is invalid: dataset.val_fraction=0"),
    (["eval.checkpoint=final"], "eval.checkpoint='final' is invalid: one of best, last"),
    (["dataset.unaugmented_fraction=1.5"], "dataset.unaugmented_fraction=1.5 is invalid: a number in [0, 1]"),
    (["dataset.unaugmented_fraction=-0.1"], "dataset.unaugmented_fraction=-0.1 is invalid: a number in [0, 1]"),
    (["model.final_bn=maybe"], "model.final_bn='maybe' is invalid: true or false"),
    (["optim.reset_momentum=1"], "optim.reset_momentum=1 is invalid: true or false"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_reproduction_input_is_one_line_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    code, stderr = run_main(*args, f"hydra.run.dir={tmp_path}")
    lines = error_lines(stderr)
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "checkpoints").exists()  # failed before training started


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=cifar10_lpn"],  # val_fraction=0 with eval.checkpoint=last
        ["experiment=svhn_table1", "dataset.val_fraction=0"],  # SVHN's extra[:10000] is the validation split
        ["dataset.val_fraction=0", "eval.checkpoint=last"],
        ["experiment=tiny_imagenet_table2", "row/tiny_imagenet_table2=r09_adv_smooth_da_unaug0.5_g0.01_m2"],
    ],
)
def test_the_reproduction_settings_themselves_pass(overrides: list[str], tmp_path: Path) -> None:
    check_config(compose_config(*overrides, output_dir=tmp_path))
