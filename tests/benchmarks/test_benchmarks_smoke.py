"""Smoke tests of the benchmarks (tiniest settings, shapes of the JSON and the table, never timings) and of
the fast paths they measure: `adv_smooth.models.speed` and the smoothness loss's hand-written backward passes."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from adv_smooth.defenses.base import TrainBatch
from adv_smooth.defenses.smoothness import LaplacianSmoothness, dense_form, laplacian_smoothness
from adv_smooth.models import PreActResNet
from adv_smooth.models.speed import apply_perf
from adv_smooth.utils.host_sync import HostSyncAudit
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


# --------------------------------------------------------------------------------------------- models/speed.py
def test_apply_perf_keeps_the_module_and_its_keys() -> None:
    net = PreActResNet(10, 3, width=4, blocks=(1,))
    keys = list(net.state_dict())
    out = apply_perf(net, channels_last=True, compile=True)  # compile is lazy: nothing is compiled here
    assert out is net and list(out.state_dict()) == keys
    assert net.stem.weight.is_contiguous(memory_format=torch.channels_last)
    assert apply_perf(PreActResNet(10, 3, width=4, blocks=(1,))).stem.weight.is_contiguous()


def test_host_sync_audit_finds_each_kind() -> None:
    x = torch.arange(4.0)
    with HostSyncAudit() as audit:
        x.sum().item()
        _ = x[x > 1]
        torch.tensor(3, device="cpu")
        torch.full((), 3, device="cpu")  # a fill: no copy, not a sync
        _ = x * 2
    kinds = sorted(k for k, _ in audit.counts)
    assert kinds == ["boolean-mask getitem", "host->device torch.tensor(..., device=)", "readback .item()"]
    assert all("test_benchmarks_smoke.py" in site for _, site in audit.counts)


def test_smoothness_loss_syncs_only_for_an_unknown_clean_count() -> None:
    """The count known on the host (adversarial training passes it on): no sync; unknown: one, however many
    taps (positions instead of boolean masks). Both select the same rows, so the loss is the same."""
    n, classes = 8, 3
    taps = [torch.rand(n, 2, 2, 2) for _ in range(5)]
    clean = torch.arange(n) >= 3
    unknown = TrainBatch(torch.zeros(n, 3, 2, 2), torch.arange(n) % classes, clean, torch.ones(n))
    known = unknown.replace(clean_count=5)
    losses = {}
    for name, batch, syncs in (("unknown", unknown, 1), ("known", known, 0)):
        with HostSyncAudit() as audit:
            losses[name] = LaplacianSmoothness(m=2).loss_terms(batch, torch.zeros(n, classes), taps)["smooth"]
        assert sum(audit.counts.values()) == syncs, (name, audit.counts)
    assert torch.equal(losses["known"], losses["unknown"])


# ------------------------------------------------------------------------ smoothness: the two dense forms
def _reference(a: torch.Tensor, y: torch.Tensor, m: int) -> torch.Tensor:
    """Autograd through the textbook formula: normalized features, W, L = D - W, L^m formed."""
    u = F.normalize(a.flatten(1), dim=1)
    w = u @ u.T
    w = w - torch.diag(torch.diagonal(w))
    lap = torch.diag(w.sum(1)) - w
    return torch.trace(y.T @ torch.linalg.matrix_power(lap, m) @ y)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("form", ["factored", "explicit"])
def test_dense_forms_match_reference_values_and_gradients(m: int, form: str) -> None:
    g = torch.Generator().manual_seed(m)
    a = torch.randn(10, 3, 2, 2, generator=g, dtype=torch.float64).relu()
    a[0] = 0  # an all-zero activation: an isolated vertex, zero gradient
    y = F.one_hot(torch.randint(0, 4, (10,), generator=g), 4).double()
    a.requires_grad_(True)
    ours = laplacian_smoothness(a, y, m=m, dense=form)
    (grad,) = torch.autograd.grad(ours, a)
    ref = _reference(a, y, m)
    (ref_grad,) = torch.autograd.grad(ref, a)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("form", ["factored", "explicit"])
def test_dense_forms_gradcheck_including_labels(m: int, form: str) -> None:
    """gradcheck on activations and a soft label matrix (m = 3 chains the apply and the quadratic form)."""
    g = torch.Generator().manual_seed(10 + m)
    a = torch.randn(6, 5, generator=g, dtype=torch.float64).abs().requires_grad_(True)
    y = torch.rand(6, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a_, y_: laplacian_smoothness(a_, y_, m=m, dense=form), (a, y))


def test_dense_form_choice() -> None:
    assert dense_form(128, 10, 2) == "factored" and dense_form(64, 10, 2) == "explicit"
    assert dense_form(128, 200, 1) == "explicit" and dense_form(512, 10, 1) == "factored"
    with pytest.raises(ValueError, match="dense"):
        laplacian_smoothness(torch.rand(4, 2), torch.eye(4), dense="sparse")


def test_channels_last_taps_give_the_same_loss_and_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 3, 4, 4, generator=g, dtype=torch.float64)
    y = F.one_hot(torch.arange(6) % 3, 3).double()
    for form in ("factored", "explicit"):
        grads = []
        for t in (a.clone(), a.clone().contiguous(memory_format=torch.channels_last)):
            t.requires_grad_(True)
            s = laplacian_smoothness(t, y, m=2, dense=form)
            grads.append((s, torch.autograd.grad(s, t)[0]))
        torch.testing.assert_close(grads[0][0], grads[1][0])
        torch.testing.assert_close(grads[0][1], grads[1][1])


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
