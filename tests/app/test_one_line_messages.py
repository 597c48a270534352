"""Messages that broke the one-clear-line promise (issue 26, item 12): the key as the user set it, the real reason,
nothing printed before the error line, and environment values taken literally."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from tests.conftest import TINY_JOB, compose_config, train_in_run_dir
from tests.test_bad_inputs import assert_one_line_exit_2, run_main, run_process


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("defense.steps=0", "defense.steps=0 is invalid: an integer in [1, 100000]"),
        ("defense.step_size=-1", "defense.step_size=-1 is invalid"),
    ],
)
def test_an_attack_built_by_a_defense_is_named_by_the_defense_key(override: str, message: str, tmp_path: Path) -> None:
    """The defense builds its attack with instantiate on a config of its own: its key is relative ('attack')."""
    code, stderr = run_main("defense=pgd", override, f"hydra.run.dir={tmp_path}")
    assert_one_line_exit_2(code, stderr, message, tmp_path)


def test_nested_instantiation_keys() -> None:
    from adv_smooth.app.preflight.failures import _nested_key

    assert _nested_key("defense.components.adversarial", "attack") == "defense.components.adversarial.attack"
    assert _nested_key("callbacks", "callbacks.robustness") == "callbacks.robustness"
    assert _nested_key(None, "eval.attacks.pgd") == "eval.attacks.pgd"


@pytest.fixture
def loop(tmp_path: Path) -> Path:
    (tmp_path / "a.ckpt").symlink_to(tmp_path / "b.ckpt")
    (tmp_path / "b.ckpt").symlink_to(tmp_path / "a.ckpt")
    return tmp_path / "a.ckpt"


@pytest.mark.parametrize(
    ("module", "key", "message"),
    [
        ("adv_smooth.__main__", "resume", "resume='{}' is invalid: it is a symlink loop"),
        ("adv_smooth.evaluate", "ckpt", "'{}' is a symlink loop"),
    ],
)
def test_a_symlink_loop_is_called_one(loop: Path, module: str, key: str, message: str, tmp_path: Path) -> None:
    code, stderr = run_main(f"{key}={loop}", f"hydra.run.dir={tmp_path / 'run'}", module=module)
    assert_one_line_exit_2(code, stderr, message.format(loop))


def test_file_problems_in_words(loop: Path, tmp_path: Path) -> None:
    from adv_smooth.utils.errors import file_problem

    (tmp_path / "broken").symlink_to(tmp_path / "gone")
    (tmp_path / "file").write_bytes(b"x")
    assert file_problem(loop).startswith("is a symlink loop")
    assert file_problem(tmp_path / "broken") == f"is a broken symlink (to {tmp_path / 'gone'}, which does not exist)"
    assert file_problem(tmp_path / "missing") == "does not exist"
    assert file_problem(tmp_path) == "is not a file (it is a folder)"
    assert file_problem(tmp_path / "file") is None


class Payload:
    def __reduce__(self):  # what a hostile pickle does: call a function while loading
        return (os.system, ("echo pwned",))


@pytest.mark.slow
def test_a_raw_pickle_refusal_is_the_only_line(tmp_path: Path) -> None:
    """torch's weights-only unpickler warned twice ('Detected pickle protocol 4 ...') before the refusal."""
    raw = tmp_path / "raw.ckpt"
    raw.write_bytes(pickle.dumps(Payload(), protocol=4))
    code, stderr = run_process("adv_smooth.evaluate", f"ckpt={raw}", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_exit_2(code, stderr, f"checkpoint '{raw}' refused")


@pytest.mark.slow
def test_nothing_before_an_error_found_once_the_trainer_is_built(tmp_path: Path) -> None:
    """Lightning's 'GPU available ...' and '`Trainer(limit_val_batches=1)` was configured ...' came first."""
    cfg = compose_config(*TINY_JOB, "logger=csv", output_dir=tmp_path / "a")
    (tmp_path / "a").mkdir()
    train_in_run_dir(cfg, tmp_path / "a")
    wider = [o for o in TINY_JOB if not o.startswith("model.width")] + ["model.width=8"]
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    code, stderr = run_process("adv_smooth", *wider, f"resume={ckpt}", f"hydra.run.dir={tmp_path / 'b'}")
    assert_one_line_exit_2(code, stderr, "does not match this model")


def test_held_lightning_lines_are_shown_once_training_starts() -> None:
    import logging

    from adv_smooth.app.console import LIGHTNING_LOGGERS, hold_info

    logger = logging.getLogger(LIGHTNING_LOGGERS[0])
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        held = hold_info()
        logger.info("GPU available: False, used: False")
        assert seen == []
        held.release()
        assert seen == ["GPU available: False, used: False"]
        dropped = hold_info()
        logger.info("TPU available")
        del dropped  # an error ended the run: the line is never shown, and nothing stays held
        logger.info("after")
        assert seen[-1] == "after" and "TPU available" not in seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_an_environment_value_is_taken_literally(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ADV_SMOOTH_DATA='${oc.env:HOME}/x' names that folder; Hydra's instantiate used to resolve it into $HOME/x."""
    from adv_smooth.app.build import build_datamodule

    monkeypatch.setenv("ADV_SMOOTH_DATA", "${oc.env:HOME}/x")
    cfg = compose_config("dataset=cifar10", output_dir=tmp_path)
    assert Path(build_datamodule(cfg, load=False).root) == Path("${oc.env:HOME}/x")


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("[enforce fail at alloc_cpu.cpp:121] . DefaultCPUAllocator: can't allocate memory: you tried"),
        MemoryError(),
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    ],
)
def test_out_of_memory_is_one_line_naming_the_knobs(error: BaseException) -> None:
    from adv_smooth.app.preflight.failures import explain

    message = explain(error)
    assert message is not None and message.startswith("out of memory")
    assert "dataset.batch_size" in message and "\n" not in message


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.width=100000", "model.width=100000 is invalid: an integer in [1, 1024]"),
        ("model.blocks=[1,1000]", "model.blocks=[1, 1000] is invalid: a list of 1 to 8 integers in [1, 100]"),
    ],
)
def test_network_size_has_a_stated_bound(override: str, message: str, tmp_path: Path) -> None:
    """A width of 100000 passed the checks and died allocating the network."""
    code, stderr = run_main(override, f"hydra.run.dir={tmp_path}")
    assert_one_line_exit_2(code, stderr, message, tmp_path)


def test_a_data_root_symlink_loop_is_called_one(loop: Path, tmp_path: Path) -> None:
    code, stderr = run_main(
        "dataset=cifar10", "dataset.download=false", f"dataset.root={loop}", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert_one_line_exit_2(code, stderr, f"dataset.root='{loop}' is invalid: an existing folder")
    assert "it is a symlink loop" in stderr
