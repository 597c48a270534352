"""The typed record of a run (`adv_smooth/run_record.py`, issue 27 item 2): every results.json (training,
evaluation, failed, interrupted) is written and read through it, round-trips, carries provenance, validates
against the shipped JSON Schema; older files migrate, malformed ones give one line naming the file and field."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from adv_smooth.app.provenance import git_state
from adv_smooth.run_record import (
    ABSENT,
    SCHEMA_VERSION,
    Ensemble,
    Honesty,
    Member,
    Provenance,
    RecordError,
    RunRecord,
    SplitRobustness,
    json_schema,
    main,
    read,
    schema_text,
    validate,
)
from tests.conftest import REPO, TINY_JOB, compose_config, train_in_run_dir
from tests.test_bad_inputs import run_main

SCHEMA_FILE = REPO / "docs" / "results.schema.json"
PROVENANCE = Provenance(git_commit="abc123", git_dirty=False, versions={"python": "3.12.1", "torch": "2.5.0"})
SUMMARY = {
    "n": 20,
    "clean_acc": 0.95,
    "cascade": False,
    "attacks": {"fgsm": {"levels": [40.0], "describe": "FGSM", "acc": {"snr40": 0.9}}},
    "worst": {"acc": {"snr40": 0.9}},
    "honesty": [],
}


def _round_trip(record: RunRecord, directory: Path) -> dict[str, Any]:
    path = record.write(directory)
    assert path == directory / "results.json"
    assert read(path) == record and read(directory) == record
    data = json.loads(path.read_text())
    validate(data, json_schema())
    assert not list(directory.glob(".results.json.*"))  # the temp file was renamed, not left behind
    return data


def _training_v1() -> dict[str, Any]:
    """A training run's results.json as written before the typed record (schema version 1)."""
    return {
        "status": "completed",
        "seed": 0,
        "choices": {"dataset": "digits", "model": "cnn", "defense": "vanilla"},
        "best_checkpoint": "/runs/a/checkpoints/epoch000.ckpt",
        "best_epoch": 0,
        "tested_checkpoint": "/runs/a/checkpoints/epoch000.ckpt",
        "epochs": 1,
        "wall_time_s": 3.5,
        "wall_time_parts_s": [3.5],
        "best_val_acc": None,
        "fit": {"val/acc": 0.9, "train/loss_epoch": 0.4},
        "metrics": {"test/acc": 0.91, "test/fgsm/snr40/acc": 0.8},
        "git_commit": "unknown",
        "git_dirty": None,
        "versions": {"python": "3.12.1", "torch": "2.5.0"},
        "split_sizes": {"train": 1438, "val": 179, "test": 180},
        "split_fingerprints": {"test": {"n": 180, "sha256": "ff"}},
        "robustness": {"test": {**SUMMARY, "records": "per_image_test.npz"}, "val": {"n": 64, "clean_acc": 0.8}},
        "honesty": {"warnings": []},
        "snapshots": {"cycles": 2, "files": ["s0.ckpt", "s1.ckpt"], "epochs": [1, 3], "evaluate": "python -m ..."},
        "test_subset": {"n": 20, "of": 180, "seed": 0, "images": "20 of the 180 test images (seed 0)"},
        "config": {"seed": 0, "eval": {"snr_levels": [40]}},
        "optimized": {},
        "a_key_from_elsewhere": {"kept": [1, 2]},
    }


def test_synthetic_records_round_trip(tmp_path: Path) -> None:
    training = RunRecord.from_dict(_training_v1())
    assert isinstance(training.robustness["test"], SplitRobustness) and training.provenance.split_sizes["val"] == 179
    evaluation = RunRecord(
        status="completed",
        task="evaluate",
        seed=1,
        choices={"dataset": "digits"},
        wall_time_s=2.0,
        metrics={"test/acc": 0.9},
        provenance=PROVENANCE,
        robustness={"test": SplitRobustness(n=20, clean_acc=0.9, attacks={})},
        honesty=Honesty(warnings=[{"message": "x", "check": "y"}]),
        ckpt_path=["/a.ckpt", "/b.ckpt"],
        ensemble=Ensemble(members=2, passes_per_attack_step=2, note="twice"),
        members=[Member(ckpt_path="/a.ckpt", metrics={"test/acc": 0.8}), Member(ckpt_path="/b.ckpt", metrics={})],
        config={"seed": 1},
    )
    failed = RunRecord(status="failed", error="NonFiniteLossError: boom", provenance=PROVENANCE)
    interrupted = RunRecord(
        status="interrupted", signal="SIGTERM", checkpoint=None, epochs_done=1, global_step=5, error="interrupted"
    )
    for i, record in enumerate([training, evaluation, failed, interrupted]):
        (tmp_path / str(i)).mkdir()
        data = _round_trip(record, tmp_path / str(i))
        assert data["schema_version"] == SCHEMA_VERSION
    assert json.loads((tmp_path / "3" / "results.json").read_text())["checkpoint"] is None  # null stays, not dropped
    assert "task" not in json.loads((tmp_path / "0" / "results.json").read_text())  # absent stays absent


def test_a_version_1_file_migrates_and_keeps_every_key(tmp_path: Path) -> None:
    old = _training_v1()
    (tmp_path / "results.json").write_text(json.dumps(old))
    record = read(tmp_path / "results.json")
    assert record.schema_version == SCHEMA_VERSION and record.extra == {"a_key_from_elsewhere": {"kept": [1, 2]}}
    record.write(tmp_path)
    assert json.loads((tmp_path / "results.json").read_text()) == {**old, "schema_version": SCHEMA_VERSION}
    bare = tmp_path / "bare.json"  # hand-written, no status: read as completed, as the report always did
    bare.write_text(json.dumps({"metrics": {"test/acc": 0.5}}))
    assert read(bare).status == "completed" and read(bare).provenance is ABSENT


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "it holds an array, not a JSON object"),
        ('{"status": "done"}', "field status: 'done' is not one of completed, failed, interrupted"),
        ('{"status": "completed", "fit": {"val/acc": "high"}}', "field fit.val/acc: expected a number, got a string"),
        ('{"status": "completed", "members": [{"metrics": 3}]}', "field members[0].metrics: expected an object"),
        ('{"status": "completed", "robustness": {"test": {"n": 1.5}}}', "field robustness.test.n: expected an integer"),
        ('{"status": "completed", "git_dirty": "yes"}', "field git_dirty: expected true or false or null"),
        ('{"status": "completed", "schema_version": 99}', "schema_version 99 is newer than this adv_smooth reads"),
        ('{"schema_version": 2}', "field status: missing"),
    ],
)
def test_a_malformed_file_is_one_line_naming_file_and_field(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(RecordError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message, message


def test_the_shipped_schema_is_the_generated_one(capsys: pytest.CaptureFixture) -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), "regenerate: python -m adv_smooth.run_record --schema"
    assert main(["--schema"]) == 0 and capsys.readouterr().out == schema_text()
    schema = json_schema()
    assert schema["required"] == ["status", "schema_version"]
    assert {"git_commit", "versions", "robustness", "members", "snapshots", "config"} <= set(schema["properties"])
    with pytest.raises(ValueError, match=r"\$.fit.val/acc: expected number"):
        validate({"status": "completed", "schema_version": 2, "fit": {"val/acc": "x"}}, schema)
    with pytest.raises(ValueError, match="required property 'status' missing"):
        validate({"schema_version": 2}, schema)


def test_the_cli_checks_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    RunRecord(status="failed", error="x").write(tmp_path)
    assert main([str(tmp_path / "results.json")]) == 0
    (tmp_path / "results.json").write_text('{"status": 3}')
    assert main([str(tmp_path / "results.json")]) == 2
    assert "field status: expected a string, got a number" in capsys.readouterr().err


def _check_real(directory: Path) -> RunRecord:
    """A results.json a real run wrote: valid against the shipped schema, round-trips, carries provenance."""
    data = json.loads((directory / "results.json").read_text())
    validate(data, json.loads(SCHEMA_FILE.read_text()))
    record = read(directory)
    assert record.to_dict() == data
    assert record.provenance.git_commit == git_state()["git_commit"] and "torch" in record.provenance.versions
    copy = directory / "copy"
    copy.mkdir()
    record.write(copy)
    assert read(copy) == record
    return record


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_training_and_evaluation_records_round_trip_with_provenance(tmp_path: Path) -> None:
    from adv_smooth.app.evaluation_run import evaluate

    run = tmp_path / "run"
    run.mkdir()
    returned = train_in_run_dir(compose_config(*TINY_JOB, output_dir=run), run)
    trained = _check_real(run)
    assert trained.to_dict() == returned and trained.task is ABSENT and trained.epochs == 1
    assert trained.provenance.split_sizes["test"] is not None
    out = tmp_path / "eval"
    cfg = compose_config(
        f"ckpt={run / 'checkpoints' / 'last.ckpt'}",
        "eval.snr_levels=[40]",
        "eval.attacks.pgd.steps=1",
        "eval.test_subset=8",
        "trainer.accelerator=cpu",
        output_dir=out,
        config_name="evaluate",
    )
    evaluate(cfg)
    evaluated = _check_real(out)  # the evaluation records the code and libraries too (issue 27)
    assert evaluated.task == "evaluate" and evaluated.test_subset.n == 8
    assert evaluated.provenance.split_fingerprints == trained.provenance.split_fingerprints
    assert isinstance(evaluated.robustness["test"], SplitRobustness) and evaluated.robustness["test"].n == 8


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_failed_and_interrupted_records_round_trip_with_provenance(tmp_path: Path) -> None:
    from tests.test_preemption import _sender

    boom = [
        "+defense.components.boom._target_=tests.test_checkpoint_safety.NanAfter",
        "+defense.components.boom.after=1",
    ]
    code, stderr = run_main(*TINY_JOB, *boom, f"hydra.run.dir={tmp_path / 'failed'}")
    assert code == 2, stderr
    failed = _check_real(tmp_path / "failed")
    assert failed.status == "failed" and failed.error.startswith("NonFiniteLossError")
    code, stderr = run_main(*TINY_JOB, *_sender(signal.SIGUSR1, step=2), f"hydra.run.dir={tmp_path / 'stopped'}")
    assert code == 138, stderr
    stopped = _check_real(tmp_path / "stopped")
    assert stopped.status == "interrupted" and stopped.signal == "SIGUSR1" and stopped.global_step == 2
