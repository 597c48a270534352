"""`eval.test_subset`: part of the test split, chosen the same way in training and in evaluation, and recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adv_smooth.lightning.test_subset import check_test_subset, subset_index
from adv_smooth.utils.errors import UserError
from tests.conftest import FAST, compose_config, train_in_run_dir
from tests.test_bad_inputs import assert_one_line_exit_2, error_lines, run_main, run_process


def test_first_images_without_a_seed() -> None:
    labels = torch.tensor([2, 0, 1, 1, 0, 2, 2])
    assert subset_index(labels, 3, None).tolist() == [0, 1, 2]


def test_stratified_sample_keeps_each_class_share_and_repeats_with_its_seed() -> None:
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)[
        torch.randperm(100, generator=torch.Generator().manual_seed(0))
    ]
    chosen = subset_index(labels, 10, seed=4)
    assert chosen.tolist() == sorted(set(chosen.tolist())) and len(chosen) == 10, "sorted split places, each once"
    assert torch.bincount(labels[chosen], minlength=3).tolist() == [5, 3, 2]
    assert torch.equal(chosen, subset_index(labels, 10, seed=4))
    assert not torch.equal(chosen, subset_index(labels, 10, seed=5))
    assert subset_index(labels, 100, seed=4).tolist() == list(range(100)), "the whole split is every image"


def test_stratified_remainders_go_to_the_largest_fractions_and_the_total_is_exact() -> None:
    labels = torch.tensor([0] * 7 + [1] * 7 + [2] * 7 + [3] * 1)  # 10 of 22: 3.18, 3.18, 3.18, 0.45
    counts = torch.bincount(labels[subset_index(labels, 10, seed=0)], minlength=4).tolist()
    assert counts == [3, 3, 3, 1]
    rare = torch.tensor([0] * 99 + [1])
    assert torch.bincount(rare[subset_index(rare, 3, seed=0)], minlength=2).tolist() == [3, 0]


@pytest.mark.parametrize(
    ("n", "seed", "message"),
    [
        (0, None, "n=0 is invalid: null (the whole test split) or a number of images from 1 to"),
        (-5, None, "n=-5 is invalid"),
        (1.5, None, "n=1.5 is invalid"),
        (True, None, "n=True is invalid"),
        ("abc", None, "n='abc' is invalid"),
        (10**10, None, "n=10000000000 is invalid"),
        (5, -1, "seed=-1 is invalid: null (the first `n` images) or an integer >= 0"),
        (5, "x", "seed='x' is invalid"),
        (None, 3, "seed=3 is invalid: it draws a sample of `n` images"),
    ],
)
def test_bad_values_are_refused_naming_the_value(n, seed, message: str) -> None:
    with pytest.raises(UserError) as error:
        check_test_subset(n, seed)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_training_refuses_a_bad_subset_before_any_data(tmp_path) -> None:
    code, stderr = run_main("eval.test_subset=0", f"hydra.run.dir={tmp_path}")
    assert_one_line_exit_2(code, stderr, "eval.test_subset=0 is invalid", tmp_path)


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory) -> tuple[Path, dict]:
    """A short training run whose test stage sees a stratified sample of 60 test images."""
    out = tmp_path_factory.mktemp("subset_run")
    cfg = compose_config(
        *FAST, "eval.snr_levels=[30]", "eval.test_subset=60", "eval.test_subset_seed=2", output_dir=out
    )
    return out, train_in_run_dir(cfg, out)


def _full_test_labels() -> np.ndarray:
    from adv_smooth.app.build import build_datamodule

    return build_datamodule(compose_config(*FAST)).splits.test[1].numpy()


@pytest.mark.slow
def test_training_evaluates_and_records_the_stratified_sample(subset_run) -> None:
    from adv_smooth.robustness.records import Records

    out, results = subset_run
    labels = _full_test_labels()
    assert results["test_subset"] == {
        "n": 60,
        "of": len(labels),
        "seed": 2,
        "images": f"a stratified sample of 60 of {len(labels)} test images (seed 2)",
    }
    assert results["split_sizes"]["test"] == 60
    test = results["robustness"]["test"]
    assert test["n"] == 60 and test["subset"] == {"n": 60, "of": len(labels), "seed": 2}
    records = Records.load(out / "per_image_test.npz")
    assert records.index.tolist() == subset_index(torch.from_numpy(labels), 60, 2).tolist()
    assert np.array_equal(records.label, labels[records.index]), "the records name each image's place in the split"
    assert (records.split_size, records.subset_seed) == (len(labels), 2)
    assert results["metrics"]["test/acc"] == pytest.approx(records.clean.mean()), "clean accuracy on the same 60"


@pytest.mark.slow
def test_evaluate_takes_the_first_images_of_the_split(subset_run, tmp_path) -> None:
    from adv_smooth.app.evaluation_run import evaluate
    from adv_smooth.robustness.records import Records

    _, results = subset_run
    cfg = compose_config(
        f"ckpt={results['best_checkpoint']}",
        "eval.snr_levels=[30]",
        "eval.test_subset=25",
        "eval.test_subset_seed=null",  # the trained run's eval settings (seed 2) apply unless overridden
        output_dir=tmp_path,
        config_name="evaluate",
    )
    evaluated = evaluate(cfg)
    assert evaluated["test_subset"]["n"] == 25 and evaluated["test_subset"]["seed"] is None
    records = Records.load(tmp_path / "per_image_test.npz")
    assert records.index.tolist() == list(range(25)) and records.subset_seed is None
    assert records.split_size == evaluated["test_subset"]["of"] == len(_full_test_labels())
    assert evaluated["metrics"]["test/acc"] == pytest.approx(records.clean.mean())


@pytest.mark.slow
def test_evaluate_refuses_a_subset_larger_than_the_split_in_one_line(subset_run, tmp_path) -> None:
    _, results = subset_run
    code, stderr = run_process(
        "adv_smooth.evaluate",
        f"ckpt={results['best_checkpoint']}",
        "eval.test_subset=99999",
        f"hydra.run.dir={tmp_path}",
    )
    assert_one_line_exit_2(code, stderr, "eval.test_subset=99999 is invalid: at most the", tmp_path)


@pytest.mark.slow
def test_evaluate_points_limit_test_batches_to_the_subset_key(subset_run, tmp_path) -> None:
    _, results = subset_run
    code, stderr = run_main(
        f"ckpt={results['best_checkpoint']}",
        "+trainer.limit_test_batches=1",
        f"hydra.run.dir={tmp_path}",
        module="adv_smooth.evaluate",
    )
    assert code == 2 and len(error_lines(stderr)) == 1 and "eval.test_subset=N" in stderr, stderr


@pytest.mark.slow
def test_two_processes_evaluate_the_same_subset_image_by_image(subset_run, tmp_path) -> None:
    """Under `ddp` each process shards the subset, not the split: the merged records equal one process's."""
    import subprocess
    import sys

    from adv_smooth.robustness.records import Records
    from tests.conftest import REPO

    _, results = subset_run
    args = [f"ckpt={results['best_checkpoint']}", "eval.test_subset=101", "eval.test_subset_seed=5"]
    args += ["eval.attacks.pgd.random_start=false", "~eval.attacks.pgd_l2", "dataset.eval_batch_size=30"]
    one, two = tmp_path / "one", tmp_path / "two"
    code, stderr = run_main(*args, f"hydra.run.dir={one}", module="adv_smooth.evaluate")
    assert code == 0, stderr
    ddp = ["trainer.devices=2", "trainer.accelerator=cpu", "trainer.strategy=ddp", f"hydra.run.dir={two}"]
    proc = subprocess.run(
        [sys.executable, "-m", "adv_smooth.evaluate", *args, *ddp],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (Records.load(d / "per_image_test.npz") for d in (one, two))
    assert a.n == b.n == 101 and (a.split_size, a.subset_seed) == (b.split_size, b.subset_seed) == (449, 5)
    assert np.array_equal(a.index, b.index) and np.array_equal(a.label, b.label)
    assert np.array_equal(a.clean_pred, b.clean_pred)
    for name in a.attacks:
        assert np.array_equal(a.attacks[name].adv_correct, b.attacks[name].adv_correct), name
