"""The `eval` presets compose and build their callback; bad attack settings stop the CLI in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adv_smooth.app.build import build_evaluation_callbacks
from adv_smooth.lightning.robustness_callback import RobustnessVsSNR
from tests.conftest import CONF, compose_config
from tests.test_bad_inputs import run_main

PRESETS = sorted(p.stem for p in (Path(CONF) / "eval").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_eval_preset_builds_its_callback(preset: str) -> None:
    cfg = compose_config(f"eval={preset}")
    callback = build_evaluation_callbacks(cfg).robustness
    assert isinstance(callback, RobustnessVsSNR) and callback.attacks
    assert callback.levels == sorted(callback.levels, reverse=True)


def test_presets_hold_what_the_readme_says() -> None:
    def attacks(preset: str) -> dict:
        return OmegaConf.to_container(compose_config(f"eval={preset}").eval.attacks, resolve=True)

    assert {k: v["norm"] for k, v in attacks("report").items()} == {"fgsm": "linf", "pgd": "linf"}
    assert {k: v["norm"] for k, v in attacks("default").items()} == {"fgsm": "linf", "pgd": "linf", "pgd_l2": "l2"}
    strong = attacks("strong")
    assert {(v["_target_"].rsplit(".", 1)[1], v["norm"]) for v in strong.values()} == {
        ("APGD", "l2"),
        ("Square", "l2"),
        ("APGD", "linf"),
        ("Square", "linf"),
    }
    assert sorted(v.get("targets", 0) for v in strong.values() if "APGD" in v["_target_"]) == [0, 0, 3, 3]
    assert compose_config("eval=strong").eval.cascade is True
    minimal = attacks("minimal")
    assert {(v["_target_"].rsplit(".", 1)[1], v["norm"]) for v in minimal.values()} == {("DDN", "l2"), ("PGD", "l2")}
    assert list(minimal)[0] == "ddn_l2" and compose_config("eval=minimal").eval.cascade is True, "PGD checks DDN"


def test_the_default_run_uses_the_default_preset() -> None:
    cfg = compose_config()
    assert set(cfg.eval.attacks) == {"fgsm", "pgd", "pgd_l2"} and cfg.eval.sanity_snr_db == -10


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["+eval.attacks.cw._target_=adv_smooth.attacks.cw.CW"],
            "eval.attacks.cw: cannot build adv_smooth.attacks.cw.CW",
        ),
        (["eval.attacks.pgd.norm=l3"], "eval.attacks.pgd.norm='l3' is invalid: expected one of ['linf', 'l2']"),
        (
            ["eval.attacks.pgd.budget=fixed", "eval.attacks.pgd.norm=l2", "+eval.attacks.pgd.radius=-1"],
            "eval.attacks.pgd.radius=-1 is invalid",
        ),
        (["eval=strong", "eval.attacks.square_l2.queries=0"], "eval.attacks.square_l2.queries=0 is invalid"),
        (["eval.snr_levels=[40,inf]"], "eval.snr_levels=[40, inf] is invalid"),
        (["eval.snr_levels=abc"], "eval.snr_levels='abc' is invalid"),
        (
            ["+eval.attacks.pgd.stepz=3"],
            "+eval.attacks.pgd.stepz=3: adv_smooth.attacks.pgd.PGD does not read 'stepz'; "
            "did you mean eval.attacks.pgd.steps?",
        ),
    ],
)
def test_bad_attack_settings_are_one_line_and_exit_2(args: list[str], expected: str, tmp_path) -> None:
    code, err = run_main(*args, f"hydra.run.dir={tmp_path}")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and expected in lines[0], err
    assert not (tmp_path / "results.json").exists() or '"completed"' not in (tmp_path / "results.json").read_text()
