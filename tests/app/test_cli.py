"""User mistakes on the command line: one clear line, non-zero exit, no traceback."""

from __future__ import annotations

import pytest

from tests.test_bad_inputs import assert_one_line_exit_2, run_process

CASES = [
    (["dataset=foo"], "dataset='foo' is not a known dataset option"),
    (["defense=bogus"], "defense='bogus' is not a known defense option"),
    (["optim.lr=-1"], "optim.lr=-1"),
    (["dataset.batch_size=0"], "dataset.batch_size=0"),
    (["dataset.val_fraction=1.0"], "dataset.val_fraction=1.0"),
    (["--info", "--cfg", "job"], "--cfg and --info cannot be combined"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_user_mistake_is_one_line(args: list[str], message: str, tmp_path) -> None:
    code, stderr = run_process("adv_smooth", *args, f"hydra.run.dir={tmp_path}")
    assert_one_line_exit_2(code, stderr, message)
    assert len([line for line in stderr.splitlines() if line.strip()]) == 1, stderr  # nothing else printed
