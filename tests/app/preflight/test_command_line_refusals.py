"""Command lines Hydra itself would answer with a traceback: one line, exit status 2, from a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_bad_inputs import assert_one_line_exit_2, run_process


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("=5", "'=5' has no key: write key=value"),  # Hydra: a 37-line traceback, exit 1
        ("seed=é", "'seed=é' has characters outside ASCII"),  # the lexer's message never said what is allowed
        ("dataset.batch_size=６４", "numbers take ASCII digits only"),  # full-width digits
        ("seed=[1", "write key=value; quote a value"),
    ],
    ids=["no key", "accented value", "full-width digits", "unclosed list"],
)
def test_unparsable_override_is_one_line_exit_2(override: str, message: str, tmp_path: Path) -> None:
    assert_one_line_exit_2(*run_process("adv_smooth", override, f"hydra.run.dir={tmp_path}"), message, tmp_path)


def test_unparsable_override_in_process() -> None:
    """The quick subset's copy of the real-process cases above."""
    from adv_smooth.app.preflight.command_line import check_command_line
    from adv_smooth.utils.errors import UserError

    with pytest.raises(UserError, match="'=5' has no key"):
        check_command_line(["=5"])
    with pytest.raises(UserError, match="outside ASCII"):
        check_command_line(["seed=é"])
    with pytest.raises(UserError, match="a key is an ASCII name"):
        check_command_line(["séed=1"])


@pytest.mark.slow
def test_no_key_in_evaluate_too(tmp_path: Path) -> None:
    code, stderr = run_process("adv_smooth.evaluate", "ckpt=x.ckpt", "=5", f"hydra.run.dir={tmp_path}")
    assert_one_line_exit_2(code, stderr, "'=5' has no key")


HIDE_OPTUNA = (
    "import sys; sys.modules['optuna'] = None\n"  # `import optuna` now fails as if it were not installed
    "sys.argv = ['adv_smooth', *sys.argv[1:]]\n"
    "from adv_smooth.__main__ import main; main()"
)


@pytest.mark.slow
def test_optuna_search_without_optuna_names_the_package_and_extra(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", HIDE_OPTUNA, "-m", "hparams_search=optuna", f"hydra.sweep.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert_one_line_exit_2(proc.returncode, proc.stderr, "the sweeper needs optuna, which is not installed")
    assert 'pip install "adv-smooth[sweeps]"' in proc.stderr
    assert not any(tmp_path.iterdir())  # refused before Hydra created a job


def test_missing_sweeper_plugin_config_names_the_extra() -> None:
    from adv_smooth.app.preflight.launchers import missing_plugin_config

    message = "In 'hparams_search/optuna': Could not load 'hydra/sweeper/optuna'."
    assert missing_plugin_config(message) == (
        'hydra/sweeper=optuna needs a Hydra plugin that is not installed here: pip install "adv-smooth[sweeps]" '
        '(or pip install -e ".[sweeps]" in a checkout)'
    )
    assert missing_plugin_config("Could not load 'dataset/foo'") is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("dataset.batch_size=99999999999999999999", "dataset.batch_size=99999999999999999999 is invalid: an integer"),
        ("dataset.eval_batch_size=99999999999999999999", "dataset.eval_batch_size=99999999999999999999 is invalid"),
        ("trainer.max_epochs=100000000000000000000000", "trainer.max_epochs=100000000000000000000000 is invalid"),
        ("trainer.max_epochs=1e23", "trainer.max_epochs=1e+23 is invalid"),
        ("eval.attacks.pgd.step_size=inf", "eval.attacks.pgd.step_size=inf is invalid: a finite number"),
        ("optim.lr=nan", "optim.lr=nan is invalid: a finite number"),
        ("eval.snr_levels=[40,1e300]", "eval.snr_levels=[40, 1e+300] is invalid"),
    ],
)
def test_numbers_no_knob_takes_are_refused_before_hydra_runs(override: str, message: str) -> None:
    from adv_smooth.app.preflight.command_line import check_command_line
    from adv_smooth.utils.errors import UserError

    with pytest.raises(UserError, match="magnitude at most") as info:
        check_command_line([override])
    assert message in str(info.value)


def test_counts_state_their_upper_bound() -> None:
    """Within the net, a count still has its own bound, stated in the constructor's message."""
    from adv_smooth.data.digits import DigitsDataModule
    from adv_smooth.utils.errors import MAX_COUNT, UserError

    with pytest.raises(UserError, match=rf"batch_size=20000000 is invalid: an integer in \[1, {MAX_COUNT}\]"):
        DigitsDataModule(batch_size=20_000_000)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["adv_smooth", "adv_smooth.evaluate"])
def test_huge_batch_size_is_one_line_exit_2(module: str, tmp_path: Path) -> None:
    """It used to pass the checks and crash in fit (exit 1, an 80-line traceback); evaluate is vetted the same."""
    args = ["ckpt=x.ckpt"] if module.endswith("evaluate") else []
    code, stderr = run_process(
        module, *args, "dataset.eval_batch_size=99999999999999999999", f"hydra.run.dir={tmp_path}"
    )
    assert_one_line_exit_2(code, stderr, "dataset.eval_batch_size=99999999999999999999 is invalid", tmp_path)


def test_plugin_packages_are_checked_for_sweeps_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A single run builds neither sweeper nor launcher, so it runs without optuna; a sweep is refused in one line."""
    from adv_smooth.app.preflight.command_line import check_command_line
    from adv_smooth.utils.errors import UserError

    monkeypatch.setitem(sys.modules, "optuna", None)
    check_command_line(["hparams_search=optuna"])
    with pytest.raises(UserError, match=r'the sweeper needs optuna.*pip install "adv-smooth\[sweeps\]"'):
        check_command_line(["-m", "hparams_search=optuna"])


def test_the_old_spelling_ckpt_path_is_renamed_with_a_notice(capsys: pytest.CaptureFixture) -> None:
    """Issue 27 item 5: `resume=` trains on, `ckpt=` names what to evaluate; `ckpt_path=` still works this release."""
    from adv_smooth.app.preflight.command_line import renamed_keys

    assert renamed_keys(["ckpt_path=last", "seed=1", "-m"], "config") == ["resume=last", "seed=1", "-m"]
    assert renamed_keys(["+ckpt_path=x.ckpt"], "config") == ["+resume=x.ckpt"]
    assert renamed_keys(["ckpt_path=[a.ckpt,b.ckpt]"], "evaluate") == ["ckpt=[a.ckpt,b.ckpt]"]
    assert renamed_keys(["resume=last", "ckpt=a.ckpt"], "config") == ["resume=last", "ckpt=a.ckpt"]  # no notice
    notes = capsys.readouterr().err.splitlines()
    assert notes == [
        "note: ckpt_path= is now resume= (ckpt_path= is still accepted in this release)",
        "note: ckpt_path= is now resume= (ckpt_path= is still accepted in this release)",
        "note: ckpt_path= is now ckpt= (ckpt_path= is still accepted in this release)",
    ]


def test_evaluate_requires_what_to_evaluate() -> None:
    from adv_smooth.app.preflight.command_line import check_command_line
    from adv_smooth.utils.errors import UserError

    with pytest.raises(UserError, match=r"^ckpt is required: python -m adv_smooth.evaluate ckpt=PATH/TO/x.ckpt"):
        check_command_line(["eval=report"], config_name="evaluate")
