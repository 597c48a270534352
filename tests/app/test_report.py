"""The sweep report on a synthetic sweep directory: grouping, mean ± std, honesty marks, left-out jobs, files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from adv_smooth.app.report_run import main, report
from adv_smooth.reporting.jobs import find_jobs
from adv_smooth.reporting.table import group_jobs


def write_job(
    sweep: Path,
    num: int,
    *,
    seed: int,
    defense: str,
    knobs: dict[str, Any],
    acc: float,
    fgsm: dict[str, float],
    augment: bool = False,
    warnings: list[dict] | None = None,
    losses: list[float] | None = None,
) -> Path:
    """A completed job as train() writes it: results.json, .hydra/overrides.yaml, optionally a CSV log."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    overrides = [f"defense={defense}", f"seed={seed}"] + [f"defense.{k}={v}" for k, v in knobs.items()]
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    config = {
        "seed": seed,
        "trainer": {"max_epochs": 3, "default_root_dir": str(job)},  # a per-job path: must not split groups
        "callbacks": {"model_checkpoint": {"dirpath": f"{job}/checkpoints"}},
        "dataset": {"batch_size": 100, "augment": augment},
        "defense": {"name": defense, **knobs, "components": {"x": {"_target_": "x.X", **knobs}}},
    }
    metrics: dict[str, Any] = {"test/acc": acc} | {f"test/fgsm/snr{k}/acc": v for k, v in fgsm.items()}
    metrics |= {f"test/pgd/snr{k}/acc": v - 0.1 for k, v in fgsm.items()}
    results = {
        "status": "completed",
        "seed": seed,
        "choices": {"dataset": "digits", "defense": defense},
        "fit": {"val/acc": acc - 0.01, "val/fgsm/snr33/acc": fgsm["33"] - 0.01},
        "metrics": metrics,
        "config": config,
    }
    if warnings is not None:
        results["metrics"]["honesty"] = {"warnings": warnings}
    (job / "results.json").write_text(json.dumps(results))
    if losses:
        (job / "csv").mkdir()
        rows = ["epoch,step,train/loss_epoch,train/ce_epoch,train/smooth_epoch,train/loss_step"]
        rows += [f"{e},{10 * e + 9},{v},{v - 0.1},0.1," for e, v in enumerate(losses)]
        (job / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    return job


NON_MONOTONE = {"check": "non_monotone", "attack": "fgsm", "message": "fgsm: accuracy rises as the noise grows"}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """3 seeds of adv_smooth (γ=0.01, m=2), 2 of vanilla (one flagged), one failed job, one still running."""
    root = tmp_path / "multirun" / "2024-01-01" / "12-00-00"
    smooth = {"gamma": 0.01, "m": 2}
    for num, (seed, acc, a50, a33) in enumerate([(0, 0.90, 0.80, 0.50), (1, 0.92, 0.82, 0.53), (2, 0.94, 0.84, 0.56)]):
        write_job(
            root,
            num,
            seed=seed,
            defense="adv_smooth",
            knobs=smooth,
            acc=acc,
            fgsm={"50": a50, "33": a33},
            losses=[2.0 - 0.5 * num, 1.5, 1.0],
        )
    write_job(root, 3, seed=0, defense="vanilla", knobs={}, acc=0.97, fgsm={"50": 0.70, "33": 0.30})
    write_job(
        root, 4, seed=1, defense="vanilla", knobs={}, acc=0.95, fgsm={"50": 0.60, "33": 0.40}, warnings=[NON_MONOTONE]
    )
    failed = root / "5"
    (failed / ".hydra").mkdir(parents=True)
    (failed / ".hydra" / "overrides.yaml").write_text("- defense=adv\n- seed=0\n")
    (failed / "results.json").write_text(json.dumps({"status": "failed", "error": "NonFiniteLossError: boom"}))
    running = root / "6"
    (running / ".hydra").mkdir(parents=True)
    (running / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (running / ".hydra" / "overrides.yaml").write_text("- defense=adv\n- seed=1\n")
    return root


def table_rows(markdown: str, attack: str) -> dict[str, list[str]]:
    """{defense: cells} of one attack's Markdown table."""
    section = markdown.split(f"### {attack}:")[1].split("###")[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()]
    return {r[0]: r for r in rows if len(r) > 5 and r[0] not in ("defense", "---")}


def test_table_means_stds_and_left_out_jobs(sweep: Path, tmp_path: Path) -> None:
    markdown, files = report([str(sweep)], tmp_path / "out")
    fgsm = table_rows(markdown, "fgsm")
    # no β column (no job has a Parseval term); γ, m; validation accuracy (last epoch: no best tested); clean, ...
    assert fgsm["adv_smooth"] == [
        "adv_smooth",
        "0.01",
        "2",
        "91.00 ± 2.00",
        "92.00 ± 2.00 [87.0, 97.0]",  # 3 seeds: mean ± t(0.975, 2) * std / sqrt(3)
        "82.00 ± 2.00 [77.0, 87.0]",
        "53.00 ± 3.00 [45.5, 60.5]",
        "3",
        "",
    ]
    assert fgsm["vanilla"][:8] == [
        "vanilla",
        "0",
        "0",
        "95.00 ± 1.41",
        "96.00 ± 1.41",
        "65.00 ± 7.07",
        "35.00 ± 7.07",
        "2",
    ]
    # the honesty check fired in one of the two vanilla jobs, for FGSM only
    assert fgsm["vanilla"][8] == "⚠ non_monotone (1/2 jobs)"
    assert table_rows(markdown, "pgd")["vanilla"][8] == ""
    assert "⚠ vanilla: non_monotone: fgsm: accuracy rises as the noise grows" in markdown
    # failed and running jobs are listed, with their overrides and why
    assert "### Jobs not in the tables (2)" in markdown
    assert "12-00-00/5 [failed] defense=adv seed=0: NonFiniteLossError: boom" in markdown
    assert "12-00-00/6 [no results.json] defense=adv seed=1: still running" in markdown
    assert "Jobs: 7 found, 5 completed, 2 groups" in markdown

    names = sorted(f.name for f in files)
    assert names == [
        "accuracy_vs_snr_fgsm.pdf",
        "accuracy_vs_snr_fgsm.png",
        "accuracy_vs_snr_pgd.pdf",
        "accuracy_vs_snr_pgd.png",
        "comparisons.csv",
        "intervals.csv",
        "report.csv",
        "report.md",
        "report.tex",
        "tables.tex",
        "training_loss.pdf",
        "training_loss.png",
    ]
    for f in files:
        assert f.stat().st_size > {".png": 10_000, ".pdf": 5_000, ".md": 100, ".tex": 100, ".csv": 10}[f.suffix]
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic writes leave no temp files

    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "report.csv").read_text())))
    smooth = next(r for r in rows if r["attack"] == "fgsm" and r["defense"] == "adv_smooth")
    assert (smooth["gamma"], smooth["m"], smooth["n"]) == ("0.01", "2", "3") and "beta" not in smooth
    assert float(smooth["val_mean"]) == pytest.approx(91.0)
    assert float(smooth["clean_mean"]) == pytest.approx(92.0) and float(smooth["clean_std"]) == pytest.approx(2.0)
    assert float(smooth["snr33_mean"]) == pytest.approx(53.0) and float(smooth["snr33_std"]) == pytest.approx(3.0)
    flagged = next(r for r in rows if r["attack"] == "fgsm" and r["defense"] == "vanilla")
    assert flagged["honesty"] == "non_monotone"


def test_groups_ignore_seed_and_job_paths_and_show_other_swept_keys(sweep: Path) -> None:
    """A key swept besides the defense (here dataset.augment) becomes a column; per-job paths do not."""
    write_job(sweep, 7, seed=0, defense="vanilla", knobs={}, acc=0.99, fgsm={"50": 0.9, "33": 0.8}, augment=True)
    groups, extras = group_jobs(find_jobs([sweep]))
    assert extras == ["dataset.augment", "defense", "γ", "m"]
    assert [(g.labels["defense"], g.labels["dataset.augment"], len(g.jobs)) for g in groups] == [
        ("adv_smooth", "False", 3),
        ("vanilla", "False", 2),
        ("vanilla", "True", 1),
    ]


def test_validation_split_and_tensorboard_curves(sweep: Path, tmp_path: Path) -> None:
    """--split val reads the end-of-fit metrics; loss curves also come from TensorBoard events when no CSV."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(sweep / "3" / "tensorboard"))
    for epoch, value in enumerate([2.5, 2.0, 1.5]):
        writer.add_scalar("train/loss_epoch", value, global_step=10 * epoch + 9)
        writer.add_scalar("epoch", epoch, global_step=10 * epoch + 9)
    writer.close()
    from adv_smooth.reporting.jobs import load_job
    from adv_smooth.reporting.plots import training_curves

    assert training_curves(load_job(sweep / "3")) == {"loss": {0: 2.5, 1: 2.0, 2: 1.5}}
    assert training_curves(load_job(sweep / "0"))["smooth"] == {0: 0.1, 1: 0.1, 2: 0.1}
    markdown, _ = report([str(sweep)], tmp_path / "val", split="val")
    fgsm = table_rows(markdown, "fgsm")
    # val/acc and val at 33 dB only, with their t-intervals over the 3 seeds
    assert fgsm["adv_smooth"][3:] == ["91.00 ± 2.00 [86.0, 96.0]", "52.00 ± 3.00 [44.5, 59.5]", "3", ""]


def test_mean_curve_rising_with_noise_is_flagged(tmp_path: Path) -> None:
    """The report's row 9 pattern: no single job warned, but the mean accuracy rises as the noise grows."""
    for num, seed in enumerate((0, 1)):
        write_job(
            tmp_path,
            num,
            seed=seed,
            defense="adv_smooth",
            knobs={"gamma": 0.001, "m": 2},
            acc=0.97,
            fgsm={"50": 0.94, "40": 0.96, "33": 0.96},
        )
    markdown, _ = report([str(tmp_path)], tmp_path / "out", plots=False)
    assert table_rows(markdown, "fgsm")["adv_smooth"][-1] == "⚠ non_monotone (mean curve)"
    assert "non_monotone (mean over seeds): fgsm: accuracy rises as the noise grows (94.00 % at 50 dB" in markdown
    assert table_rows(markdown, "pgd")["adv_smooth"][-1] == "⚠ non_monotone (mean curve)"  # pgd = fgsm - 0.1 here


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda p: p / "nope", "no such directory"), (lambda p: p, "no jobs found")],
    ids=["missing", "empty"],
)
def test_bad_paths_are_one_line_errors(make, message: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([str(make(tmp_path))])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


@pytest.mark.parametrize("content", ["[1, 2]", '"done"', "null", "3"])
def test_results_json_that_is_not_an_object_is_a_listed_failure(content: str, tmp_path: Path) -> None:
    write_job(tmp_path, 0, seed=0, defense="vanilla", knobs={}, acc=0.9, fgsm={"50": 0.8, "33": 0.5})
    odd = tmp_path / "1"
    odd.mkdir()
    (odd / "results.json").write_text(content)
    markdown, _ = report([str(tmp_path)], tmp_path / "out", plots=False)
    assert "Jobs: 2 found, 1 completed" in markdown
    assert "[failed] (no overrides recorded): unreadable results.json: it holds" in markdown
    assert "not a JSON object" in markdown


def test_out_that_is_a_file_is_one_line(sweep: Path, tmp_path: Path, capsys) -> None:
    taken = tmp_path / "report.md"
    taken.write_text("someone's notes")
    with pytest.raises(SystemExit) as info:
        main([str(sweep), "--out", str(taken), "--no-plots"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and f"--out {taken} is a file" in err and "\n" not in err
    assert taken.read_text() == "someone's notes"


def test_out_below_a_file_is_one_line(sweep: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as info:
        main([str(sweep), "--out", str(tmp_path / "file" / "report"), "--no-plots"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: could not write the report") and "\n" not in err
