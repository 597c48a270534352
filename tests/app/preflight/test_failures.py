"""A library object's refusal names its own options; the user reads the keys they set (`keyed`, `explain`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adv_smooth.app.build import build_defense, build_evaluation_callbacks
from adv_smooth.app.preflight.failures import explain, keyed
from adv_smooth.data.cifar import CifarDataModule
from adv_smooth.data.folder import FolderDataModule
from adv_smooth.lightning.snapshots import Snapshots
from adv_smooth.utils.errors import UserError
from tests.conftest import compose_config


def _refusal(build) -> str:
    with pytest.raises(UserError) as error:
        build()
    return str(error.value)


def test_an_option_set_by_interpolation_is_named_by_the_key_the_user_sets(tmp_path: Path) -> None:
    """GaussianNoise refuses `sigma=None and snr=None`; the user set `defense.noise_sigma` / `defense.noise_snr`."""
    cfg = compose_config("defense=gaussian", "defense.noise_sigma=null", output_dir=tmp_path)
    message = _refusal(lambda: build_defense(cfg.defense))
    assert message.startswith("defense.noise_sigma=None and defense.noise_snr=None: set exactly one"), message


def test_options_named_anywhere_in_the_message_and_in_backquotes(tmp_path: Path) -> None:
    cfg = compose_config("eval.test_subset_seed=3", output_dir=tmp_path)  # a seed without a subset size
    message = _refusal(lambda: build_evaluation_callbacks(cfg))
    assert message == (
        "eval.test_subset_seed=3 is invalid: it draws a sample of eval.test_subset images: set eval.test_subset too, "
        "or leave the seed null"
    )


def test_the_robustness_callback_names_the_eval_keys_its_node_reads(tmp_path: Path) -> None:
    """Its `certify` is `${oc.select:eval.certify,null}`: a refusal inside it names `eval.certify.*`."""
    cfg = compose_config("eval=certified", "eval.certify.n0=5", "eval.certify.n=4", output_dir=tmp_path)
    message = _refusal(lambda: build_evaluation_callbacks(cfg))
    assert message.startswith("eval.certify.n0=5 is invalid: an integer in [1, eval.certify.n=4]"), message
    levels = compose_config("eval.snr_levels=[0]", output_dir=tmp_path)
    assert _refusal(lambda: build_evaluation_callbacks(levels)).startswith("eval.snr_levels=[0] is invalid")


def test_a_refusal_at_run_time_is_placed_by_name_and_by_the_value_it_shows(tmp_path: Path) -> None:
    """Raised after building (a data module's files, a callback's hook): the job's whole config places it."""
    cfg = compose_config("dataset=folder", "dataset.root=/no/such/folder", output_dir=tmp_path)
    error = UserError(_refusal(lambda: FolderDataModule(root="/no/such/folder", download=False).setup()))
    assert explain(error, cfg).startswith("dataset.root='/no/such/folder' is not a folder")
    cifar = compose_config("dataset=cifar10", "dataset.download=false", output_dir=tmp_path)
    missing = UserError(_refusal(lambda: CifarDataModule(root=tmp_path / "none", download=False).setup()))
    assert "set dataset.download=true or place" in explain(missing, cifar)
    assert "or point dataset.root (or the ADV_SMOOTH_DATA" in explain(missing, cifar)
    snapshot = compose_config("optim=snapshot", "optim.cycles=4", "trainer.max_epochs=6", output_dir=tmp_path)
    error = UserError(_refusal(lambda: Snapshots(cycles=4, epochs=6)))
    assert explain(error, snapshot).startswith("optim.cycles=4 is invalid: a divisor of trainer.max_epochs=6")
    # `seed` is both the run's seed and the test subset's: the value shown tells which
    subset = compose_config("seed=7", "eval.test_subset=5", "eval.test_subset_seed=3", output_dir=tmp_path)
    assert keyed("seed=3 is invalid: x", subset) == "eval.test_subset_seed=3 is invalid: x"
    assert keyed("seed=7 is invalid: x", subset) == "seed=7 is invalid: x"


def test_what_names_no_option_or_several_stays_as_written(tmp_path: Path) -> None:
    cfg = compose_config(output_dir=tmp_path)
    for message in ("ckpt='x.ckpt' does not exist", "eval.snr_levels=[0] is invalid", "nothing=1 here", "plain"):
        assert keyed(message, cfg) == message
    assert keyed("steps=-1 is invalid", {"a": {"steps": 1}, "b": {"steps": 2}}, "eval") == "steps=-1 is invalid"
    assert keyed("steps=2 is invalid", {"a": {"steps": 1}, "b": {"steps": 2}}, "eval") == "eval.b.steps=2 is invalid"
    assert keyed("steps=-1 is invalid", None) == "steps=-1 is invalid"  # a notebook's call: its own names
