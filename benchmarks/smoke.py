"""`python -m benchmarks.smoke [NAME ...]`: the benchmarks at their tiniest sizes — shapes of the JSON and the table,
the plain loops doing the project's work — never timings. tests/benchmarks runs each check as a subprocess (the
tests do not import benchmarks); with no NAME every check runs. Prints `ok NAME` / `skipped NAME: why` per check
and exits 1 at the first failure.

The fast paths they measure are tested beside their code: tests/models/test_perf.py,
tests/benchmarks/test_host_syncs.py, tests/defenses/test_laplacian.py."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from adv_smooth.app.build import build_attacks
from adv_smooth.models.digits_cnn import DigitsCNN
from adv_smooth.utils.io import write_json_atomic
from benchmarks import (
    _timing,
    certify,
    data_pipeline,
    ensemble,
    evaluation,
    minimal_norm,
    plain_run,
    run,
    run_data,
    snapshot_ensemble,
    training,
)

TINY_MODEL = ["model.blocks=[1,1,1,1]"]
TINY = ["model.width=4", "model.blocks=[1,1,1,1]"]


class Skipped(Exception):  # noqa: N818 - a check that cannot run here, and says why
    """A check that cannot run on this machine."""


def approx(expected: float, rel: float = 1e-6) -> _Approx:
    return _Approx(expected, rel)


class _Approx:
    def __init__(self, expected: float, rel: float) -> None:
        self.expected, self.rel = expected, rel

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (int, float)) and math.isclose(float(other), self.expected, rel_tol=self.rel)

    def __repr__(self) -> str:
        return f"{self.expected} +- {self.rel:.0e}"


def check_training_benchmark_shape(tmp_path: Path) -> None:
    s = training.Settings(
        width=4,
        batch_size=8,
        steps=2,
        warmup=1,
        reps=1,
        logger="none",
        cases=["vanilla", "smooth_m2"],
        model_overrides=TINY_MODEL,
    )
    result = training.run(s)
    assert set(result["cases"]) == {"vanilla", "smooth_m2"}
    for case in result["cases"].values():
        for path in ("plain", "lightning"):
            assert case[path]["images_per_s"]["median"] > 0
            assert len(case[path]["wall_s"]["values"]) == 1
            assert "vs_baseline" in case[path]
        assert case["loss_abs_diff"] < 1e-4  # the plain loop does the same computation as the module
    targets = {(t["device"], t["target"]): t for t in result["targets"]}
    assert targets[("cpu", "smoothness m=2, 10 classes")]["status"] in ("pass", "FAIL")
    assert targets[("cpu", "parseval")]["status"] == "not measured"  # not among the cases run
    assert all(t["status"] == "not measured" for (dev, _), t in targets.items() if dev == "cuda")
    comp = result["components"]
    assert set(comp["smoothness"]) == {"m1_10cls", "m2_10cls", "m1_200cls", "m2_200cls"}
    assert comp["parseval"]["speedup"]["median"] > 0
    syncs = result["host_syncs"]
    assert {"plain", "lightning"} <= set(syncs) and all("site" in row for row in syncs["lightning"])

    table = training.format_report(result)
    assert "not measured" in table and "smooth_m2" in table and "host syncs per step" in table
    out = write_json_atomic(tmp_path / "training.json", result)
    assert json.loads(out.read_text())["benchmark"] == "training"


def check_evaluation_benchmark_shape(tmp_path: Path) -> None:
    s = evaluation.Settings(width=4, batch_size=4, batches=1, warmup=0, reps=1, model_overrides=TINY_MODEL)
    result = evaluation.run(s)
    assert set(result["paths"]) == {"plain", "lightning"}
    assert result["snr_levels_db"] == [50.0, 45.0, 40.0, 33.0] and set(result["attacks"]) == {"fgsm", "pgd", "pgd_l2"}
    assert result["accuracy_abs_diff"] == 0.0  # same batches, weights and PGD starts: same answers
    assert [t["status"] for t in result["targets"] if t["device"] == "cuda"] == ["not measured"]
    table = evaluation.format_report(result)
    assert "not measured" in table and "lightning" in table
    out = write_json_atomic(tmp_path / "evaluation.json", result)
    assert json.loads(out.read_text())["benchmark"] == "evaluation"


def check_cli_defaults(tmp_path: Path) -> None:
    quick, _ = training.settings_from_args(["--quick"])
    assert (quick.width, quick.batch_size, quick.quick) == (16, 128, True)
    assert "vanilla+compile" not in {c.name for c in training.select_cases(quick)}
    gpu, _ = training.settings_from_args(
        ["--device", "cuda", "--precision", "bf16-mixed", "--channels-last", "--compile"]
    )
    assert (gpu.width, gpu.batch_size) == (64, 512)
    names = {c.name for c in training.select_cases(gpu)}
    assert not {"vanilla+bf16", "vanilla+compile", "vanilla+channels_last"} & names  # already the base
    ev, _, versus = evaluation.settings_from_args(["--device", "cuda"])
    assert versus is None and evaluation.settings_from_args(["--versus-autoattack", "--quick"])[2] == 1
    assert (ev.width, ev.batch_size) == (64, 512)


def check_interleaved_alternates_order_and_summaries(tmp_path: Path) -> None:
    calls = []
    out = _timing.interleaved(3, {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 3.0})
    assert calls == ["a", "b", "b", "a", "a", "b"] and out == {"a": [1.0] * 3, "b": [3.0] * 3}
    assert _timing.paired_overhead([1.1, 1.2], [1.0, 1.0])["median"] == approx(0.15)
    assert _timing.summarize([1.0, 2.0, 3.0])["spread_pct"] == approx(100.0)


def check_ensemble_benchmark_uses_the_strong_presets_linf_attacks(tmp_path: Path) -> None:

    attacks = ensemble.strong_linf_attacks(8.0)
    assert set(attacks) == {"apgd_ce_linf", "apgd_t_linf", "square_linf"}
    assert all(a["budget"] == "fixed" and a["eps_255"] == 8.0 and a["norm"] == "linf" for a in attacks.values())
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    x, y = torch.rand(6, 1, 8, 8), torch.arange(6)
    result = ensemble.ours(model, x, y, 8.0)
    assert 0.0 <= result["robust_acc"] <= 1.0 and result["wall"] > 0


def check_the_plain_loop_runs_what_the_project_would(tmp_path: Path) -> None:
    root = run_data.make_folder(tmp_path / "folder", train=40, test=10)
    size = {**run.QUICK, "folder_epochs": 1, "test_images": 4}
    overrides = run.job_overrides("folder", size, root)
    assert overrides[:2] == ["dataset=folder", f"dataset.root={root}"] and "+trainer.limit_test_batches=1" in overrides
    spec = run.plain_spec([*overrides, *TINY], size["test_images"])
    assert spec["dataset"]["kwargs"]["augment"] is True and spec["epochs"] == 1 and spec["optim"]["milestones"] == [1]
    assert spec["levels"] == [50, 45, 40, 33] and spec["sanity_snr_db"] == -10
    cfg = run.compose_run_config([*overrides, *TINY])
    project = build_attacks(OmegaConf.to_container(cfg.eval.attacks, resolve=True))
    assert repr(plain_run.build_attacks(spec["attacks"])) == repr(project)  # the same attacks, option for option
    out = plain_run.run(json.loads(json.dumps(spec)))  # what the child process reads
    assert out["n_test"] == 4 and set(out["attack_acc"]) == {"fgsm", "pgd", "pgd_l2"}
    assert all(len(v) == 4 and all(0 <= a <= 1 for a in v) for v in out["attack_acc"].values())
    assert run.job_overrides("default", run.FULL, root) == []  # the default job is `python -m adv_smooth` itself


def check_generated_tiny_imagenet_loads_and_is_cached(tmp_path: Path) -> None:
    root = run_data.make_tiny_imagenet(tmp_path, per_class=2, classes=3)
    timing = run_data.time_tiny_imagenet(root)
    assert timing["jpegs"] == 3 * 2 + 3 and timing["first_s"] > 0 and timing["cached_s"] > 0
    assert (root / "tiny-imagenet-200" / "cache_uint8.pt").is_file()


def check_summary_and_report_read_the_raw_runs(tmp_path: Path) -> None:
    def rep(wall: float, report: dict) -> dict:
        return {"wall_s": wall, "cpu_s": 2 * wall, "report": report}

    raw = {}
    for job in ("default", "folder"):
        raw[f"{job}/project"] = [rep(w, {"test_acc": 0.9, "in_run_s": w - 5}) for w in (110.0, 120.0)]
        phases = {"imports_s": 2.0, "data_s": 1.0, "train_s": 20.0, "test_s": 70.0, "test_acc": 0.9}
        raw[f"{job}/plain"] = [rep(100.0, phases), rep(100.0, phases)]
        raw[f"{job}/startup"] = [rep(6.0, {"imports_s": 4.0, "compose_s": 0.5, "data_s": 1.0})] * 2
    jobs = run.summarize(raw)
    assert jobs["default"]["ratio_wall"]["median"] == approx(1.15) and jobs["default"]["status"] == "FAIL"
    result = {
        "jobs": jobs,
        "tiny_imagenet": {"jpegs": 9, "first_run_s_per_10k": {"median": 30.0}, "cached_s_per_10k": {"median": 0.5}},
        "load_average_1min_before_after": [1.0, 1.0],
        "seconds": 1.0,
    }
    table = run.format_report(result)
    assert "1.150" in table and "FAIL" in table and "30.0 s per 10,000 JPEGs" in table
    assert json.loads(write_json_atomic(tmp_path / "run.json", result).read_text())["jobs"]["folder"]


def check_snapshot_ensemble_benchmark_shape(tmp_path: Path) -> None:
    out = tmp_path / "ensemble.json"
    result = snapshot_ensemble.main(["--members", "2", "--n", "4", "--width", "4", "--reps", "1", "--out", str(out)])
    assert set(result["cases"]) == {"1", "2"}
    assert result["cases"]["2"]["passes_per_attack_step"] == 2 and result["cases"]["2"]["vs_one_member"]["median"] > 0
    assert json.loads(out.read_text())["pgd_steps"] == 10


def check_plain_loop_matches_the_tool_on_a_deterministic_network(tmp_path: Path) -> None:
    """A network whose answer ignores the noise: both certify the same class with the same radius."""

    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot((x.flatten(1)[:, :1] * 0).long().squeeze(1) + 3, 10).float()

    x = torch.rand(4, 1, 8, 8)
    plain = certify.plain_certify(Constant(), x, 0.5, 10, 100, 0.001, 64)
    expected = 0.5 * float(torch.special.ndtri(torch.tensor(0.001 ** (1 / 100), dtype=torch.float64)))
    assert (plain[:, 0] == 3).all() and np.allclose(plain[:, 1], expected), "k = n: the bound is alpha^(1/n)"
    result = certify.compare(Constant(), x, torch.full((4,), 3), 0.5, 10, 100, 64, reps=1)
    for name in ("tool", "plain"):
        assert result[name]["certified_acc_radius0"] == 1.0
        assert np.isclose(result[name]["mean_radius_right"], expected)
        assert result[name]["samples_per_s"]["median"] > 0
    assert "speedup" in certify.format_report(result)


def check_quality_counts_the_images_whose_minimal_snr_is_below_each_level(tmp_path: Path) -> None:
    snr = torch.tensor([55.0, 42.0, 30.0, 12.0, math.inf, -math.inf])  # +inf: wrong clean; -inf: never broken
    clean = torch.tensor([True, True, True, True, False, True])
    reference = torch.tensor([55.0, 41.0, 30.5, 12.0, math.inf, -math.inf])
    q = minimal_norm.quality(snr, clean, reference)
    assert q["accuracy_pct"]["50"] == approx(100 * 4 / 6)  # 42, 30, 12 and the unbroken one
    assert q["accuracy_pct"]["40"] == approx(100 * 3 / 6)
    assert q["accuracy_pct"]["10"] == approx(100 * 1 / 6)
    assert q["median_diff_db"] == approx(0.0)  # diffs 0, +1, -0.5, 0 (finite, clean only)
    assert q["share_worse_0.1db"] == approx(0.25) and q["share_better_0.1db"] == approx(0.25)


def check_the_preset_it_times_is_the_composed_eval_minimal(tmp_path: Path) -> None:
    attacks, levels, cascade = minimal_norm.preset()
    assert [type(a).__name__ for a in attacks.values()] == ["DDN", "PGD"]
    assert levels == [50.0, 45.0, 40.0, 33.0] and cascade is True


def check_a_tiny_run_has_every_field_and_check(tmp_path: Path) -> None:
    if importlib.util.find_spec("adv_lib") is None:
        raise Skipped("adv-lib not installed (pip install --no-deps adv-lib)")
    model, x, y = minimal_norm.cnn_model(16)
    result = minimal_norm.compare(model, x, y, reps=1)
    assert result["n"] == 16 and set(result["checks"]) == {
        "cpu_ratio_within_limit",
        "no_level_less_broken",
        "median_norm_not_larger",
    }
    for name in ("preset", "reference", "fmn_preset"):
        assert result[name]["cpu_s"]["median"] > 0 and set(result[name]["accuracy_pct"]) >= {"50", "33", "10"}
    assert result["reference"]["median_diff_db"] == 0.0, "the reference against itself"
    assert result["preset"]["cpu_ratio"]["median"] > 0
    table = minimal_norm.format_report({"models": {"cnn": result}})
    assert "fmn_preset" in table and "cpu_ratio_within_limit" in table


def check_the_data_pipelines_run_side_by_side(tmp_path: Path) -> None:
    """Both loaders at a tiny size, ours as a CPU loader (a data module without a trainer until its loader exists)."""
    result = data_pipeline.run(n_images=256, batches=2, repeats=1, batch_size=32, workers=0)
    assert result["ours"]["images_per_s"] > 0 and result["torchvision"]["images_per_s"] > 0
    assert result["ratio"] > 0


CHECKS: dict[str, Callable[[Path], None]] = {
    name.removeprefix("check_"): fn for name, fn in sorted(globals().items()) if name.startswith("check_")
}


def main(argv: list[str] | None = None) -> None:
    names = (sys.argv[1:] if argv is None else argv) or list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"error: no check {unknown[0]!r} (checks: {', '.join(CHECKS)})", file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(1)  # tiny models: as fast, and no stall on a shared machine
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                CHECKS[name](Path(tmp))
            except Skipped as e:
                print(f"skipped {name}: {e}", flush=True)
                continue
        print(f"ok {name}", flush=True)


if __name__ == "__main__":
    main()
