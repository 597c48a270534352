"""A cascade's per-attack rows, on a real cascade run (the `eval=strong` preset through the test loop).

Each attack of a cascade runs only on the images the earlier ones left robust and stores -1 for the rest. Read
alone, such a row counts the images broken earlier as robust and reads as clean accuracy; every row must be
cumulative instead, in results.json, the logged (TensorBoard) scalars and the printed table alike.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from adv_smooth.defenses.plain_loop import fit_classifier
from adv_smooth.models.digits_cnn import DigitsCNN, digits_split
from tests.conftest import compose_config, quiet_trainer

LEVELS = [30, 20]
KEYS = ["snr30", "snr20"]


@pytest.fixture(scope="module")
def cascade_run(tmp_path_factory) -> tuple[dict, dict, object]:
    """`eval=strong` (6 attacks, fewer steps and queries) on 300 digits through `trainer.test`, with TensorBoard."""
    import pytorch_lightning as pl

    from adv_smooth.app.build import build_evaluation_callbacks
    from adv_smooth.lightning.module import RobustClassifier

    out = tmp_path_factory.mktemp("cascade")
    x, y, perm, g = digits_split(0)
    net = fit_classifier(DigitsCNN(), x, y, perm[:1400], epochs=10, generator=g)
    test = perm[1400:1700]
    cfg = compose_config("eval=strong", output_dir=out)
    for label, attack in cfg.eval.attacks.items():
        attack.update({"queries": 40} if "square" in label else {"steps": 8})
    callback = build_evaluation_callbacks(cfg, snr_levels=LEVELS, sanity_snr_db=None, seed=0).robustness
    logger = pl.loggers.TensorBoardLogger(str(out), name="tb", version="")
    trainer = quiet_trainer(callbacks=[callback], default_root_dir=str(out), logger=logger)
    with torch.random.fork_rng():
        trainer.test(RobustClassifier(net), dataloaders=DataLoader(TensorDataset(x[test], y[test]), batch_size=100))
    logger.experiment.flush()
    return callback.results()["robustness"]["test"], dict(trainer.callback_metrics), out


@pytest.mark.slow
def test_no_cascade_row_exceeds_an_earlier_one(cascade_run) -> None:
    summary, _, _ = cascade_run
    assert summary["cascade"] is True
    names = list(summary["attacks"])
    assert names == ["apgd_ce_l2", "apgd_t_l2", "square_l2", "apgd_ce_linf", "apgd_t_linf", "square_linf"]
    for key in KEYS:
        rows = [summary["clean_acc"]] + [summary["attacks"][n]["acc"][key] for n in names]
        assert all(b <= a for a, b in zip(rows, rows[1:])), (key, rows)
        assert rows[-1] == summary["worst"]["acc"][key], "the last row is robust after every attack: the worst case"
    broken_first = summary["clean_acc"] - summary["attacks"]["apgd_ce_l2"]["acc"]["snr20"]
    assert broken_first > 0.2, "the first attack breaks many images at 20 dB"
    assert summary["attacks"]["apgd_t_l2"]["acc"]["snr20"] <= summary["clean_acc"] - broken_first, (
        "a later row counts what the earlier attacks broke, it does not read as clean accuracy"
    )


@pytest.mark.slow
def test_each_row_says_what_ran_before_it_and_on_how_many_images(cascade_run) -> None:
    summary, _, _ = cascade_run
    names = list(summary["attacks"])
    n = summary["n"]
    for i, name in enumerate(names):
        entry = summary["attacks"][name]["cascade"]
        assert entry["after"] == names[:i]
        for key in KEYS:
            before = summary["clean_acc"] if i == 0 else summary["attacks"][names[i - 1]]["acc"][key]
            assert entry["attacked"][key] == round(before * n), (name, key)
        cumulative = summary["attacks"][name]["cumulative_acc"]
        assert cumulative["snr20"] <= min(cumulative["snr30"], summary["attacks"][name]["acc"]["snr20"])


@pytest.mark.slow
def test_logged_scalars_and_records_agree_with_the_rows(cascade_run) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from adv_smooth.robustness.records import Records

    summary, metrics, out = cascade_run
    events = EventAccumulator(str(out / "tb")).Reload()
    records = Records.load(out / "per_image_test.npz")
    for name, entry in summary["attacks"].items():
        from_records = records.accuracy(name)
        for key, level in zip(KEYS, LEVELS):
            tag = f"test/{name}/{key}/acc"
            assert float(metrics[tag]) == pytest.approx(entry["acc"][key])
            assert events.Scalars(tag)[-1].value == pytest.approx(entry["acc"][key])
            assert from_records[float(level)] == pytest.approx(entry["acc"][key])


@pytest.mark.slow
def test_printed_table_rows_are_cumulative_and_marked(cascade_run) -> None:
    from adv_smooth.app.summary import robustness_table

    summary, _, _ = cascade_run
    lines = robustness_table(summary)
    names = list(summary["attacks"])
    assert [line[:14].strip() for line in lines[1:8]] == [names[0], *(f"+ {n}" for n in names[1:]), "worst"]
    assert lines[8].startswith("cascade: each row is robust after its attack and every attack above it")
    snr20 = [float(line.split()[-1]) for line in lines[1:8]]
    assert all(b <= a for a, b in zip(snr20, snr20[1:])), snr20
    assert snr20[-2] == snr20[-1], "the last attack's row is the worst case"


@pytest.mark.slow
def test_report_tables_read_the_cumulative_rows_and_agree_with_the_records(cascade_run) -> None:
    """`python -m adv_smooth.report`'s tables take each row from results.json; its paired tests recompute it from
    the records: both are cumulative, so they agree and never rise along the cascade."""
    import json

    from adv_smooth.reporting.jobs import find_jobs
    from adv_smooth.reporting.paired import correct_mask, load_records
    from adv_smooth.reporting.table import build_tables, group_jobs

    summary, metrics, out = cascade_run
    results = {
        "status": "completed",
        "seed": 0,
        "choices": {"defense": "vanilla"},
        "config": {"seed": 0},
        "metrics": {k: float(v) for k, v in metrics.items()},
        "robustness": {"test": summary},
    }
    (out / "results.json").write_text(json.dumps(results))
    (job,) = find_jobs([out])
    groups, _ = group_jobs([job])
    tables = {t.attack: t for t in build_tables(groups)}
    records = load_records(job, "test")
    for column in ("30", "20"):
        rows = [tables[name].rows[0].cells[column].mean for name in summary["attacks"]]
        assert all(b <= a for a, b in zip(rows, rows[1:])), (column, rows)
        for name, percent in zip(summary["attacks"], rows):
            mask = correct_mask(records, tables[name], column)
            assert 100 * mask.mean() == pytest.approx(percent), (name, column)
