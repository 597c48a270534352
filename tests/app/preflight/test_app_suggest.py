"""A mistyped group or key gets a did-you-mean and the keys allowed there, never Hydra's "+key" advice; a `+key`
that nothing reads is refused. All before anything is trained (composition only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adv_smooth.app.preflight.command_line import check_command_line
from adv_smooth.app.preflight.suggest import _keywords
from adv_smooth.utils.errors import UserError
from tests.test_bad_inputs import assert_one_line_exit_2, run_main


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["defence=adv"], ["did you mean defense=adv?", "(defense options: adv, adv_parseval,"]),
        (["trainer.max_epoch=3"], ["did you mean trainer.max_epochs=3?", "(trainer keys: accelerator,", "max_epochs"]),
        (
            ["defense=vanilla", "+defense.gamma=0.001"],
            ["defense=vanilla does not read defense.gamma", "(e.g. defense=smooth defense.gamma=0.001)"],
        ),
        (["+defence=adv"], ["nothing reads a top-level 'defence'; did you mean defense=adv (no +)?"]),
        (["+dataset.batchsize=32"], ["DigitsDataModule does not read 'batchsize'; did you mean dataset.batch_size?"]),
    ],
    ids=["group typo", "key typo", "+knob the defense lacks", "+group typo", "+key a data module swallows"],
)
def test_mistake_gets_advice_in_one_line_exit_2(args: list[str], expected: list[str], tmp_path: Path) -> None:
    code, stderr = run_main(*args, f"hydra.run.dir={tmp_path}")
    assert_one_line_exit_2(code, stderr, expected[0], tmp_path)
    assert all(part in stderr for part in expected), stderr
    assert "To append" not in stderr and "+defence" not in stderr.replace("+defence=adv:", "")
    assert not (tmp_path / ".hydra").exists()  # refused before Hydra wrote anything into the run dir


def test_plus_is_advised_only_for_an_argument_the_object_takes() -> None:
    with pytest.raises(UserError) as info:
        check_command_line(["trainer.limit_train_batches=3"])
    assert "add it with +trainer.limit_train_batches=3 (an argument of pytorch_lightning.Trainer" in str(info.value)
    with pytest.raises(UserError) as info:
        check_command_line(["trainer.limit_trian_batches=3"])
    assert "+trainer" not in str(info.value) and "trainer has no key 'limit_trian_batches'" in str(info.value)


@pytest.mark.parametrize(
    "args",
    [
        ["+trainer.limit_train_batches=2"],  # a Trainer argument the config does not list
        ["defense=smooth", "defense.gamma=0.1"],  # an existing knob, no +
        ["+attack@eval.attacks.apgd=apgd"],  # a group added under a package
        ["+eval.attacks.extra={_target_: adv_smooth.attacks.fgsm.FGSM}"],  # a whole node the callback reads
        ["+optimized_metric=val/acc"],  # a new top-level key resembling nothing: left to the code that reads it
        ["+hydra.job.env_set.OMP_NUM_THREADS=1"],  # Hydra's own settings
        [
            "-m",
            "+defense.components.boom._target_=tests.test_checkpoint_safety.NanAfter",
            "+defense.components.boom.after=0,1",
        ],
    ],
)
def test_keys_something_reads_are_accepted(args: list[str]) -> None:
    check_command_line(args)


def test_keyword_reading_follows_kwargs_up_the_classes() -> None:
    """A data module passes `**kwargs` up to the base module, whose constructor names every parameter (no `**_`):
    the keywords read are those of the whole chain. A constructor that takes any keyword is left to the object."""
    names = _keywords("adv_smooth.data.digits.DigitsDataModule")
    assert {"size", "test_fraction", "batch_size", "root"} <= set(names)
    assert "max_epochs" in _keywords("pytorch_lightning.Trainer")
    assert _keywords("builtins.dict") is None


def test_data_modules_refuse_unknown_keywords_themselves() -> None:
    from adv_smooth.data.digits import DigitsDataModule

    with pytest.raises(TypeError, match="batchsize"):
        DigitsDataModule(batchsize=32)

    assert _keywords("adv_smooth.no_such.Thing") is None
