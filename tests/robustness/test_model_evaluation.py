"""`evaluate_model` from a notebook: a plain `nn.Sequential` on digits gets, image by image, the records that
`python -m adv_smooth.evaluate weights=... model=...` writes for the same weights (issue 27's acceptance test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from adv_smooth.robustness.records import Records
from tests.test_bad_inputs import run_main

pytestmark = pytest.mark.usefixtures("one_thread")

N, BATCH, LEVELS = 40, 16, [40.0, 25.0]  # three batches, the last one short: the attacks' streams run per batch


def _fitted_mlp() -> nn.Sequential:
    """A small MLP fitted for a few steps on the digits training images (so its predictions and the attacks'
    outcomes differ from image to image, and the comparison is not trivial)."""
    from adv_smooth.data.digits import DigitsDataModule

    data = DigitsDataModule(val_fraction=0.0)
    data.setup()
    x, y = data.splits.train
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x.float() / 255), y).backward()
        opt.step()
    return net.eval()


def _command_line_records(weights: Path, out: Path, preset: str) -> Records:
    """`python -m adv_smooth.evaluate` on the weights, the network as a config (identity normalization)."""
    layers = (
        "[{_target_:torch.nn.Flatten},{_target_:torch.nn.Linear,in_features:1024,out_features:32},"
        "{_target_:torch.nn.ReLU},{_target_:torch.nn.Linear,in_features:32,out_features:10}]"
    )
    code, stderr = run_main(
        f"weights={weights}",
        "model=torchvision",
        "~model.network",
        f"+model.network={{_target_:torch.nn.Sequential,_args_:{layers}}}",
        "model.mean=[0.0]",
        "model.std=[1.0]",
        "trainer=cpu",
        f"eval={preset}",
        f"eval.snr_levels=[{','.join(map(str, LEVELS))}]",
        f"eval.test_subset={N}",
        f"dataset.eval_batch_size={BATCH}",
        "seed=3",
        f"hydra.run.dir={out}",
        module="adv_smooth.evaluate",
    )
    assert code == 0, stderr
    return Records.load(out / "per_image_test.npz")


@pytest.mark.slow
# independent attacks with the sanity check; a cascade; the default's attacks and randomized-smoothing certification
@pytest.mark.parametrize("preset", ["default", "minimal", "certified"])
def test_a_sequential_in_a_notebook_gets_the_command_lines_records(preset: str, tmp_path: Path) -> None:
    from adv_smooth import evaluate_model
    from adv_smooth.data.digits import DigitsDataModule

    net = _fitted_mlp()
    weights = tmp_path / "mlp.pt"
    torch.save(net.state_dict(), weights)
    expected = _command_line_records(weights, tmp_path / "cli", preset)

    data = DigitsDataModule()  # the notebook: the digits test split, its first N images, the tensors themselves
    data.setup()
    x, y = data.splits.test
    records, summary = evaluate_model(net, (x[:N], y[:N]), preset=preset, snr_levels=LEVELS, seed=3, batch_size=BATCH)

    assert expected.split_size == len(y) and records.split_size is None  # the command line says it took a subset
    for field in ("index", "label", "clean_pred", "zero_grad"):
        np.testing.assert_array_equal(getattr(records, field), getattr(expected, field), err_msg=field)
    assert list(records.attacks) == list(expected.attacks) and records.cascade == expected.cascade
    for name, rec in expected.attacks.items():
        mine = records.attacks[name]
        assert mine.levels == rec.levels
        np.testing.assert_array_equal(mine.adv_correct, rec.adv_correct, err_msg=name)
        np.testing.assert_array_equal(mine.measured_snr_db, rec.measured_snr_db, err_msg=name)
        if rec.min_snr_db is None:
            assert mine.min_snr_db is None
        else:
            np.testing.assert_array_equal(mine.min_snr_db, rec.min_snr_db, err_msg=name)
    assert records.sanity_level == expected.sanity_level
    assert records.sanity_correct.keys() == expected.sanity_correct.keys()
    for name, correct in expected.sanity_correct.items():
        np.testing.assert_array_equal(records.sanity_correct[name], correct, err_msg=name)
    assert records.certified.keys() == expected.certified.keys() and bool(expected.certified) == (preset == "certified")
    for key, values in expected.certified.items():
        np.testing.assert_array_equal(records.certified[key], values, err_msg=key)
    # not a trivial agreement: the images differ, some attack breaks some of them and leaves others
    assert 0 < records.clean.mean() < 1 and records.n == N
    broken = np.concatenate([r.adv_correct.ravel() for r in records.attacks.values()])
    assert (broken == 0).any() and (broken == 1).any()
    assert summary["n"] == N and summary["clean_acc"] == pytest.approx(float(records.clean.mean()))


def _tiny() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(48, 5)).eval()
    x = torch.rand(20, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    return net, x, torch.arange(20) % 5


def test_a_loader_of_uint8_batches_is_the_tensors_divided_by_255() -> None:
    from adv_smooth import evaluate_model

    net, x, y = _tiny()
    pixels = (x * 255).round().to(torch.uint8)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(pixels, y), batch_size=8)
    options = {"preset": "report", "snr_levels": [30.0], "sanity_snr_db": None}
    from_loader, _ = evaluate_model(net, loader, **options)
    from_tensors, summary = evaluate_model(net, (pixels.float() / 255, y), batch_size=8, **options)
    assert list(from_loader.attacks) == ["fgsm", "pgd"] and from_loader.sanity_level is None
    for name, rec in from_tensors.attacks.items():
        np.testing.assert_array_equal(from_loader.attacks[name].measured_snr_db, rec.measured_snr_db)
    np.testing.assert_array_equal(from_loader.clean_pred, from_tensors.clean_pred)
    assert summary["attacks"]["pgd"]["acc"]["snr30"] <= summary["clean_acc"]


def test_bad_data_is_one_line() -> None:
    from adv_smooth import evaluate_model
    from adv_smooth.utils.errors import UserError

    net, x, y = _tiny()
    with pytest.raises(UserError, match="20 images but 19 labels"):
        evaluate_model(net, (x, y[:19]), preset="report")
    with pytest.raises(UserError, match="preset='fastest' is not an eval preset"):
        evaluate_model(net, (x, y), preset="fastest")
    with pytest.raises(UserError, match=r"^snr_levels=\[0\] is invalid"):  # its own argument, not a config key
        evaluate_model(net, (x, y), preset="report", snr_levels=[0])
