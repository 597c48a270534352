"""Progress of the robustness evaluation: the engine reports each attack, rank 0 shows a bar or rare plain lines."""

from __future__ import annotations

import io

import torch

from adv_smooth.attacks import FGSM, PGD
from adv_smooth.models.preact_resnet import PreActResNet
from adv_smooth.robustness.batch import evaluate_batch
from adv_smooth.robustness.progress import EvaluationProgress, duration
from tests.conftest import quiet_trainer


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return PreActResNet(num_classes=3, in_channels=1, width=4, blocks=(1,))


def _attacks() -> dict:
    return {"fgsm": FGSM(), "pgd_l2": PGD(steps=2, norm="l2")}


def test_the_engine_reports_each_attack_starting_and_finishing() -> None:
    x, y = torch.rand(6, 1, 8, 8), torch.arange(6) % 3
    for cascade, expected in [
        (False, [("fgsm", [40, 20], False), ("fgsm", [40, 20], True), ("pgd_l2", [40, 20], False)]),
        (True, [("fgsm", [40], False), ("fgsm", [40], True), ("fgsm", [20], False), ("fgsm", [20], True)]),
    ]:
        events: list = []
        evaluate_batch(_net(), x, y, _attacks(), [20, 40], cascade, progress=lambda *e, out=events: out.append(e))
        assert [(n, list(lv), f) for n, lv, _, f in events][: len(expected)] == expected
        assert all(n == 6 for _, _, n, _ in events)
        assert len(events) == (4 if not cascade else 8)


def test_the_bar_names_the_attack_and_counts_images_and_levels() -> None:
    out = io.StringIO()
    attacks = _attacks()
    progress = EvaluationProgress(10, attacks, {"fgsm": [40, 20], "pgd_l2": [40, 20]}, bar=True, file=out)
    progress("fgsm", [40, 20], 10, False)
    progress("fgsm", [40, 20], 10, True)
    progress("pgd_l2", [40, 20], 10, False)
    progress("pgd_l2", [40, 20], 10, True)
    progress.close()
    text = out.getvalue()
    assert "Robustness (test): pgd_l2 (L2) 40/20 dB" in text and "40/40" in text


def test_without_a_bar_plain_lines_come_at_most_once_a_minute() -> None:
    now = [0.0]
    lines: list[str] = []
    attacks = _attacks()
    levels = {"fgsm": [40, 20], "pgd_l2": [40, 20]}
    progress = EvaluationProgress(100, attacks, levels, bar=False, write=lines.append, clock=lambda: now[0])
    now[0] = 30.0
    progress("fgsm", [40, 20], 50, True)
    assert lines == [], "a short evaluation prints nothing"
    now[0] = 61.0
    progress("pgd_l2", [40], 50, True)  # a cascade's level: these images are not done with pgd_l2 yet
    now[0] = 90.0
    progress("pgd_l2", [20], 50, True)
    assert len(lines) == 1
    assert lines[0] == (
        "robustness (test): pgd_l2 (L2) at 40 dB, 0/100 images; 38 % of the evaluation done, "
        "1m01s elapsed, about 1m42s left"
    )
    assert duration(3725) == "1h02m" and duration(7) == "7s"


def test_the_callback_shows_a_bar_on_rank_zero_only_when_bars_are_on(tmp_path, capsys) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from adv_smooth.lightning.module import RobustClassifier
    from adv_smooth.lightning.robustness import RobustnessVsSNR

    data = DataLoader(TensorDataset(torch.rand(12, 1, 8, 8), torch.arange(12) % 3), batch_size=6)
    for bar in (True, False):
        callback = RobustnessVsSNR(_attacks(), [40, 20], log_figure=False, save_records=False)
        trainer = quiet_trainer(callbacks=[callback], default_root_dir=tmp_path, enable_progress_bar=bar)
        trainer.test(RobustClassifier(_net()), dataloaders=data, verbose=False)
        out = capsys.readouterr().out
        assert ("Robustness (test): pgd_l2 (L2) 40/20 dB" in out) is bar
        assert "48/48" in out if bar else "robustness" not in out.lower(), out
