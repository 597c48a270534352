"""The report pairs two runs image by image only when they evaluated the same images (issue 26, item 10).

CIFAR-10 and CIFAR-100 both number their 10,000 test images 0..9999, so equal index arrays once let McNemar
compare a CIFAR-100 row with a CIFAR-10 baseline "on the same test images". The dataset config, the labels
and, where both runs recorded it, the split's fingerprint must agree too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from adv_smooth.app.report_run import report
from adv_smooth.robustness.records import Records
from tests.reporting.records_sweep import LEVELS, draw_records, write_records_job

N = 1000


def _job(root: Path, num: int, seed: int, defense: str, clean: float, **where: Any) -> Path:
    """A job of `defense` at `clean` accuracy (fgsm a little lower); `where`: dataset, dataset_config, labels
    (replacing the sweep's common labels) and fingerprint (written into results.json as a run records it)."""
    rng = np.random.default_rng(100 * num + seed)
    records = draw_records(rng, N, clean, {"fgsm": {LEVELS[0]: clean - 0.1}})
    if "labels" in where:
        right = records.clean_pred == records.label
        records = Records(
            index=records.index,
            label=where["labels"],
            clean_pred=np.where(right, where["labels"], -1),
            attacks=records.attacks,
        )
    job = write_records_job(
        root,
        num,
        records,
        seed=seed,
        defense=defense,
        dataset=where.get("dataset", "cifar10"),
        dataset_config=where.get("dataset_config"),
    )
    if "fingerprint" in where:
        results = json.loads((job / "results.json").read_text())
        results["split_fingerprints"] = {"val": None, "test": where["fingerprint"]}
        (job / "results.json").write_text(json.dumps(results))
    return job


def _sweep(root: Path, base: dict[str, Any], row: dict[str, Any]) -> Path:
    """vanilla (80 %) under `base`, adv (92 %: a difference McNemar cannot miss) under `row`, seeds 0 and 1."""
    for seed in (0, 1):
        _job(root, 2 * seed, seed, "vanilla", 0.80, **base)
        _job(root, 2 * seed + 1, seed, "adv", 0.92, **row)
    return root


def _marked(markdown: str) -> bool:
    return "↑" in markdown or "↓" in markdown


def test_the_control_same_images_are_paired(tmp_path: Path) -> None:
    markdown, _ = report([str(_sweep(tmp_path / "s", {}, {}))], tmp_path / "out", plots=False)
    assert _marked(markdown) and "exact McNemar" in markdown


def test_cifar10_and_cifar100_rows_are_never_paired(tmp_path: Path) -> None:
    """The issue's case: same index arrays (and, to isolate the rule, the same labels), different datasets."""
    sweep = _sweep(tmp_path / "s", {"dataset": "cifar10"}, {"dataset": "cifar100"})
    markdown, _ = report([str(sweep)], tmp_path / "out", plots=False)
    assert not _marked(markdown) and "exact McNemar" not in markdown
    assert "No paired tests against the baseline" in markdown
    csv = tmp_path / "out" / "comparisons.csv"
    assert not csv.exists() or len(csv.read_text().splitlines()) <= 1


def test_other_labels_on_the_same_positions_are_not_paired(tmp_path: Path) -> None:
    """Runs without a fingerprint (older results.json): the labels, image by image, must agree."""
    shuffled = np.random.default_rng(5).permutation(draw_records(np.random.default_rng(0), N, 0.5, {}).label)
    markdown, _ = report([str(_sweep(tmp_path / "s", {}, {"labels": shuffled}))], tmp_path / "out", plots=False)
    assert not _marked(markdown) and "No paired tests against the baseline" in markdown


def test_the_recorded_fingerprints_decide_where_no_config_key_differs(tmp_path: Path) -> None:
    """Two image folders at different roots: the same dataset config once `root` is left out, the same labels.
    Different fingerprints: not paired; the same: paired."""
    where = {"dataset": "folder", "dataset_config": {"size": 32}}
    apart = _sweep(
        tmp_path / "apart",
        {**where, "fingerprint": "sha256:aaaa"},
        {**where, "dataset_config": {"size": 32, "root": "/other"}, "fingerprint": "sha256:bbbb"},
    )
    markdown, _ = report([str(apart)], tmp_path / "out1", plots=False)
    assert not _marked(markdown) and "No paired tests against the baseline" in markdown
    same = _sweep(
        tmp_path / "same",
        {**where, "fingerprint": "sha256:aaaa"},
        {**where, "dataset_config": {"size": 32, "root": "/copy"}, "fingerprint": "sha256:aaaa"},
    )
    markdown, _ = report([str(same)], tmp_path / "out2", plots=False)
    assert _marked(markdown)
