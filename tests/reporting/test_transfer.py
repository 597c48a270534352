"""The transfer matrix: examples crafted on each model scored by every other; a model whose own gradients are
useless (saturated softmax: the cross-entropy's gradient underflows to zero) keeps a high white-box accuracy while
examples transferred from an equivalent sound model break it, and is flagged with counts; sound models stay quiet."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from adv_smooth.attacks.pgd import PGD
from adv_smooth.reporting.transfer import transfer_markdown, transfer_matrix

pytestmark = pytest.mark.usefixtures("one_thread")


class Saturated(nn.Module):
    """The same decisions as `net`, its logits scaled by 1e4: in float32 the softmax is one-hot and the gradient of
    the cross-entropy is exactly zero on every confidently classified image (masked gradients)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x) * 1e4


def _problem() -> tuple[dict[str, nn.Module], Tensor, Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    x = 0.3 + 0.4 * torch.rand(300, 1, 4, 4)
    y = net(x).argmax(dim=1)
    other = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    with torch.no_grad():
        other[1].weight.copy_(net[1].weight + 0.01 * torch.randn_like(net[1].weight))
        other[1].bias.copy_(net[1].bias)
    return {"sound": net, "sound_too": other, "masked": Saturated(net)}, x, y


def _pgd() -> PGD:
    return PGD(steps=10, include_fgsm=False, random_start=False)


def test_a_masked_model_is_flagged_per_pair_with_counts() -> None:
    models, x, y = _problem()
    result = transfer_matrix(models, x, y, _pgd(), 10.0)
    white = {name: result.accuracy(name, name) for name in models}
    assert white["masked"] > white["sound"] + 0.2, "its own (zero) gradients move nothing"
    assert result.accuracy("sound", "masked") == pytest.approx(white["sound"]), "same decisions: transfer breaks it"
    flagged = {(f["source"], f["target"]) for f in result.masking}
    assert flagged == {("sound", "masked"), ("sound_too", "masked")}
    flag = next(f for f in result.masking if f["source"] == "sound")
    assert (
        flag["broken_only_by_transfer"]
        == int((result.correct["masked"]["masked"] & ~result.correct["sound"]["masked"]).sum())
        > 0
    )
    text = "\n".join(transfer_markdown(result, "PGD L-inf 10 steps at 10 dB on 300 images"))
    assert "gradient masking suspected in masked: examples crafted on sound leave" in text


def test_sound_models_stay_quiet() -> None:
    models, x, y = _problem()
    del models["masked"]
    result = transfer_matrix(models, x, y, _pgd(), 10.0)
    assert result.masking == []
    assert "No pair flagged" in "\n".join(transfer_markdown(result, "PGD"))


@pytest.mark.slow
def test_report_transfer_loads_a_sweeps_networks(tmp_path) -> None:
    """`report --transfer` on two tiny digits runs: each network rebuilt from its config and tested weights, the
    matrix in report.md; a single job is refused in one line."""
    from adv_smooth.app.report_run import main, report
    from tests.test_bad_inputs import run_process

    tiny = ["trainer=cpu", "model.width=8", "model.blocks=[1,1]", "trainer.max_epochs=1", "eval=report"]
    tiny += ["eval.snr_levels=[25]", "eval.val_subset=0", "eval.test_subset=10", "trainer.enable_progress_bar=false"]
    for seed in (0, 1):
        code, stderr = run_process(
            "adv_smooth", *tiny, f"seed={seed}", f"hydra.run.dir={tmp_path / 'sweep' / str(seed)}"
        )
        assert code == 0, stderr[-2000:]
    markdown, _ = report([str(tmp_path / "sweep")], out=tmp_path / "out", plots=False, transfer=(25.0, 40, "linf"))
    section = markdown[markdown.index("## Transfer matrix") :]
    assert "| crafted on \\ scored by | 0 | 1 |" in section and "on the first 40 test images" in section
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "sweep" / "0"), "--out", str(tmp_path / "one"), "--transfer"])
    assert exit_info.value.code == 2
