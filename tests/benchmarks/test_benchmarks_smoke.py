"""Smoke tests of the benchmarks: tiniest settings, shapes of the JSON and the table, never timings.

The fast paths they measure are tested beside their code: tests/models/test_perf.py,
tests/benchmarks/test_host_syncs.py, tests/defenses/test_laplacian.py."""

from __future__ import annotations

import json

import pytest
import torch

from adv_smooth.utils.io import write_json_atomic
from benchmarks import _timing, evaluation, training

TINY_MODEL = ["model.blocks=[1,1,1,1]"]


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------ benchmarks
def test_training_benchmark_shape(tmp_path) -> None:
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


def test_evaluation_benchmark_shape(tmp_path) -> None:
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


def test_cli_defaults() -> None:
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


def test_interleaved_alternates_order_and_summaries() -> None:
    calls = []
    out = _timing.interleaved(3, {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 3.0})
    assert calls == ["a", "b", "b", "a", "a", "b"] and out == {"a": [1.0] * 3, "b": [3.0] * 3}
    assert _timing.paired_overhead([1.1, 1.2], [1.0, 1.0])["median"] == pytest.approx(0.15)
    assert _timing.summarize([1.0, 2.0, 3.0])["spread_pct"] == pytest.approx(100.0)


def test_ensemble_benchmark_uses_the_strong_presets_linf_attacks() -> None:
    from benchmarks import ensemble

    attacks = ensemble.strong_linf_attacks(8.0)
    assert set(attacks) == {"apgd_ce_linf", "apgd_t_linf", "square_linf"}
    assert all(a["budget"] == "fixed" and a["eps_255"] == 8.0 and a["norm"] == "linf" for a in attacks.values())
    torch.manual_seed(0)
    model = ensemble.DigitsCNN().eval()
    x, y = torch.rand(6, 1, 8, 8), torch.arange(6)
    result = ensemble.ours(model, x, y, 8.0)
    assert 0.0 <= result["robust_acc"] <= 1.0 and result["wall"] > 0
