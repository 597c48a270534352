"""`report --robustbench`: RobustBench's model-info JSON from an eval=autoattack evaluation on the whole test split,
with exactly RobustBench's fields; refused in one line (exit 2, nothing written) for anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adv_smooth.app.report_run import main
from adv_smooth.reporting.robustbench import FIELDS
from tests.conftest import compose_config


def _job(root: Path, name: str, *overrides: str, subset: bool = False, preset: str = "autoattack") -> Path:
    """A completed job whose config is the composed preset (so the test follows conf/eval/autoattack*.yaml)."""
    cfg = OmegaConf.to_container(compose_config(f"eval={preset}", *overrides), resolve=True)
    job = root / name
    job.mkdir(parents=True)
    results = {
        "status": "completed",
        "seed": 0,
        "choices": {"dataset": "digits", "eval": preset, "defense": "adv"},
        "config": cfg,
        "metrics": {"test/acc": 0.9, "test/worst/fixed/acc": 0.4},
        "robustness": {"test": {"n": 449, "clean_acc": 0.9, "worst": {"acc": {"fixed": 0.4123}}, "attacks": {}}},
    }
    if subset:
        results["test_subset"] = {"images": "the first 30 of 449 test images", "n": 30, "of": 449}
    (job / "results.json").write_text(json.dumps(results))
    return root


@pytest.mark.parametrize(("preset", "threat", "eps"), [("autoattack", "Linf", "8/255"), ("autoattack_l2", "L2", "0.5")])
def test_a_standard_evaluation_exports_robustbenchs_fields(tmp_path: Path, capsys, preset, threat, eps) -> None:
    root = _job(tmp_path / "sweep", "0", preset=preset)
    main([str(root), "--out", str(tmp_path / "out"), "--no-plots", "--robustbench"])
    (path,) = (tmp_path / "out" / "robustbench" / "digits" / threat).glob("*.json")
    info = json.loads(path.read_text())
    assert tuple(info) == FIELDS
    assert (info["eps"], info["clean_acc"], info["autoattack_acc"]) == (eps, "90.00", "41.23")
    assert info["dataset"] == "digits" and "no RobustBench leaderboard" in info["footnote"]
    assert isinstance(info["additional_data"], bool) and info["number_forward_passes"] == 1
    assert info["architecture"].startswith("PreActResNet-") and info["unreliable"] is False


@pytest.mark.parametrize(
    ("overrides", "subset", "preset", "message"),
    [
        ((), True, "autoattack", "it ran on a subset (the first 30 of 449 test images)"),
        (("eval.attacks.square.queries=1000",), False, "autoattack", "eval.attacks.square differs"),
        (("eval.attacks.apgd_t.targets=3",), False, "autoattack", "eval.attacks.apgd_t differs"),
        ((), False, "strong", "eval=strong is not eval=autoattack"),
    ],
)
def test_anything_else_is_refused_in_one_line(tmp_path: Path, capsys, overrides, subset, preset, message) -> None:
    root = _job(tmp_path / "sweep", "0", *overrides, subset=subset, preset=preset)
    with pytest.raises(SystemExit) as exit_info:
        main([str(root), "--out", str(tmp_path / "out"), "--no-plots", "--robustbench"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists(), "refused before anything was written"
