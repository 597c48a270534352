"""`python -m adv_smooth.export`: a run's tested weights as a .safetensors file with the run's configs as metadata,
loadable by `weights=` (no pickle); bad input is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from adv_smooth.export import main
from adv_smooth.models import PreActResNet
from adv_smooth.models.external import load_weights
from adv_smooth.utils.checkpoints import load_checkpoint
from adv_smooth.utils.errors import UserError


def _net(seed: int) -> PreActResNet:
    torch.manual_seed(seed)
    return PreActResNet(num_classes=10, in_channels=1, width=4, blocks=(1,))


def _run_dir(tmp_path: Path) -> tuple[Path, PreActResNet]:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    net = _net(0)
    tested = run / "checkpoints" / "epoch003-val_acc0.9.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "epoch": 3}, tested)
    torch.save(
        {"state_dict": {f"net.{k}": v for k, v in _net(1).state_dict().items()}}, run / "checkpoints" / "last.ckpt"
    )
    results = {"status": "completed", "seed": 7, "tested_checkpoint": str(tested), "config": {"model": {"width": 4}}}
    (run / "results.json").write_text(json.dumps(results))
    return run, net


def test_a_run_dir_exports_the_weights_it_tested_with_its_config(tmp_path: Path, capsys) -> None:
    run, net = _run_dir(tmp_path)
    main([str(run)])
    written = run / "checkpoints" / "epoch003-val_acc0.9.safetensors"
    assert capsys.readouterr().out.strip() == f"wrote: {written}"
    fresh = _net(5)
    load_weights(fresh, written)  # what `weights=FILE` does
    for key, value in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    with safe_open(str(written), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["model"]) == {"width": 4} and meta["seed"] == "7" and meta["source"].endswith(".ckpt")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/nowhere"], "nowhere"),
        (["{run}", "--out", "{tmp}/model.pt"], "--out {tmp}/model.pt is invalid: a file name ending in .safetensors"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    run, _ = _run_dir(tmp_path)
    args = [a.format(tmp=tmp_path, run=run) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and message.format(tmp=tmp_path) in err, err


def test_a_foreign_file_named_safetensors_is_refused_in_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"not a safetensors file at all")
    with pytest.raises(UserError, match="is not a readable safetensors file"):
        load_checkpoint(fake)
