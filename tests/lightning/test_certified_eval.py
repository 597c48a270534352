"""`eval=certified` through the real entry points: bad settings refused in one line, and on digits a noise-trained
network certified on part of the test split, its certificates in results.json and per_image_test.npz."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from adv_smooth.robustness.certify import ABSTAIN
from adv_smooth.robustness.records import Records
from tests.test_bad_inputs import assert_one_line_exit_2, run_main, run_process


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.certify.sigma=0", "eval.certify.sigma=0 is invalid: a noise level in (0, 100]"),
        ("eval.certify.sigma=-0.1", "eval.certify.sigma=-0.1 is invalid"),
        ("eval.certify.n0=2000", "eval.certify.n0=2000 is invalid: an integer in [1, eval.certify.n=1000]"),
        ("eval.certify.n=0", "eval.certify.n=0 is invalid"),
        ("eval.certify.alpha=0", "eval.certify.alpha=0 is invalid: a level strictly between 0 and 1"),
        ("eval.certify.alpha=1", "eval.certify.alpha=1 is invalid"),
        ("+eval.certify.steps=3", "eval.certify.steps is not an option"),
    ],
)
@pytest.mark.parametrize("module", ["adv_smooth.__main__", "adv_smooth.evaluate"])
def test_bad_certification_settings_are_one_line_and_exit_2(
    module: str, override: str, message: str, tmp_path: Path
) -> None:
    """Refused before any data or checkpoint is read (the checkpoint named here does not exist)."""
    ckpt = ["ckpt=/nonexistent/last.ckpt"] if module == "adv_smooth.evaluate" else []
    code, stderr = run_main("eval=certified", override, *ckpt, f"hydra.run.dir={tmp_path}", module=module)
    assert_one_line_exit_2(code, stderr, message, tmp_path)


@pytest.mark.slow
def test_a_real_shell_sees_one_line_and_status_2(tmp_path: Path) -> None:
    code, stderr = run_process(
        "adv_smooth.evaluate", "ckpt=/nonexistent/last.ckpt", "eval=certified", "eval.certify.n0=5",
        "eval.certify.n=4", f"hydra.run.dir={tmp_path}",
    )  # fmt: skip
    assert_one_line_exit_2(code, stderr, "eval.certify.n0=5 is invalid: an integer in [1, eval.certify.n=4]", tmp_path)


TINY_TRAIN = [
    "defense=gaussian",
    "defense.noise_sigma=0.3",
    "trainer=cpu",
    "model.width=8",
    "model.blocks=[1,1]",
    "trainer.max_epochs=2",
    "eval.val_subset=0",
    "eval=report",
    "eval.snr_levels=[33]",
    "eval.test_subset=10",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.mark.slow
def test_digits_noise_training_then_certification(tmp_path: Path) -> None:
    train_dir, n_images, n0, n, steps, draws = tmp_path / "train", 24, 16, 120, 2, 4
    passes = n0 + n + 4 * (2 * steps * draws + n)  # CERTIFY, then PGD on g inside each radius and at 3 levels
    code, stderr = run_process("adv_smooth", *TINY_TRAIN, f"hydra.run.dir={train_dir}")
    assert code == 0, stderr[-3000:]
    ckpt = train_dir / "checkpoints" / "last.ckpt"

    def certify(out: Path) -> tuple[dict, Records]:
        args = [f"ckpt={ckpt}", "eval=certified", f"eval.test_subset={n_images}", "eval.test_subset_seed=1"]
        args += [f"eval.certify.n0={n0}", f"eval.certify.n={n}", "eval.certify.batch=500", "eval.attacks.pgd.steps=2"]
        args += [f"eval.certify.check_steps={steps}", f"eval.certify.check_draws={draws}"]
        code, stderr = run_process("adv_smooth.evaluate", *args, "eval.snr_levels=[40,30,20]", f"hydra.run.dir={out}")
        assert code == 0, stderr[-3000:]
        cost = f"on {n_images} test images, at most {passes:,} forward passes an image, {n_images * passes:,} in all"
        assert cost in stderr, "the cost is printed before the certification starts"
        results = json.loads((out / "results.json").read_text())
        return results, Records.load(out / "per_image_test.npz")

    results, records = certify(tmp_path / "eval")
    block = results["robustness"]["test"]["certified"]
    assert (block["images"], block["n0"], block["n"], block["alpha"]) == (n_images, n0, n, 0.001)
    assert block["sigma"] == 0.3, "certified at the level the network was trained with"
    assert block["forward_passes"] == n_images * passes
    checked = block["check"]
    assert checked["checked"] == int((records.certified["radius"] > 0).sum()) and checked["broken"] == 0, checked
    sandwich = [(block["acc"][k], block["empirical_acc"][k]) for k in ("snr40", "snr30", "snr20")]
    assert all(low <= high for low, high in sandwich), "the certified lower bound under the attack's upper bound"
    assert block["violations"] == {"snr40": 0, "snr30": 0, "snr20": 0}
    assert not [w for w in results["honesty"]["warnings"] if w["check"] == "certified_broken"]
    curve = [block["acc"][k] for k in ("snr40", "snr30", "snr20")]
    assert curve == sorted(curve, reverse=True) and all(a <= block["smoothed_clean_acc"] for a in curve)
    assert results["metrics"]["test/certified/snr30/acc"] == pytest.approx(block["acc"]["snr30"])

    cert = records.certified
    assert records.n == n_images and records.split_size == 449, "the subset's places in the whole split"
    levels = {"empirical_snr40", "empirical_snr30", "empirical_snr20"}
    assert set(cert) == {"prediction", "p_lower", "radius", "snr_db", "sigma", "count", "broken"} | levels
    assert all(len(v) == n_images for v in cert.values()) and (cert["sigma"] == 0.3).all()
    answered = cert["prediction"] != ABSTAIN
    phi_inv = torch.special.ndtri(torch.as_tensor(cert["p_lower"][answered])).numpy()
    assert np.allclose(cert["radius"][answered], 0.3 * phi_inv) and (cert["radius"][~answered] == 0).all()
    assert (cert["count"] <= n).all()
    right = (cert["prediction"] == records.label) & (cert["snr_db"] <= 30)
    assert block["acc"]["snr30"] == pytest.approx(right.mean())

    _, again = certify(tmp_path / "again")
    for key, values in cert.items():
        assert np.array_equal(again.certified[key], values), f"seeded: {key} repeats exactly"
