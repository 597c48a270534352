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
    from adv_smooth.lightning.robustness_callback import RobustnessVsSNR

    data = DataLoader(TensorDataset(torch.rand(12, 1, 8, 8), torch.arange(12) % 3), batch_size=6)
    for bar in (True, False):
        callback = RobustnessVsSNR(_attacks(), [40, 20], log_figure=False, save_records=False)
        trainer = quiet_trainer(callbacks=[callback], default_root_dir=tmp_path, enable_progress_bar=bar)
        trainer.test(RobustClassifier(_net()), dataloaders=data, verbose=False)
        out = capsys.readouterr().out
        assert ("Robustness (test): pgd_l2 (L2) 40/20 dB" in out) is bar
        assert "48/48" in out if bar else "robustness" not in out.lower(), out


def test_the_sanity_check_and_certification_report_progress_too() -> None:
    """Besides the attacks, the work done once an image reports itself: the sanity check (one attack at a very low
    SNR) and certification, with each of its phases (minutes each on a CPU, silent before)."""
    from adv_smooth.robustness.certify import Certifier
    from adv_smooth.robustness.evaluator import CERTIFICATION, Evaluator

    x, y = torch.rand(6, 1, 8, 8), torch.arange(6) % 3
    events: list = []
    evaluate_batch(_net(), x, y, _attacks(), [20, 40], sanity_level=-10, progress=lambda *e: events.append(e))
    assert [(n, list(lv), f) for n, lv, _, f in events[-2:]] == [("sanity", [], False), ("sanity", [], True)]

    class Recorder:
        def __init__(self) -> None:
            self.events: list = []

        def __call__(self, *event) -> None:
            self.events.append(event)

        def phase(self, text: str) -> None:
            self.events.append(("phase", text))

    certifier = Certifier(sigma=0.25, n0=4, n=8, check_steps=1, check_draws=2, empirical=True, levels=[20.0])
    engine = Evaluator(_attacks(), [20], sanity_snr_db=-10, certifier=certifier)
    assert set(engine.steps()) == {"sanity", CERTIFICATION}
    recorder = Recorder()
    engine.start(progress=recorder).add(_net(), x, y)
    tail = [e[0] if e[0] != "phase" else e[1] for e in recorder.events][-6:]
    assert tail == [
        CERTIFICATION,
        "class votes (n0=4)",
        "probability bound (n=8)",
        "check inside the radii",
        "empirical attack at 20 dB",
        CERTIFICATION,
    ]


def test_steps_count_once_an_image_and_phases_print_plain_lines() -> None:
    now = [0.0]
    lines: list[str] = []
    steps = {"sanity": "sanity check (pgd_l2 at -10 dB)", "certification": "certification, CERTIFY (sigma=0.25)"}
    levels = {"fgsm": [40, 20], "pgd_l2": [40, 20]}
    progress = EvaluationProgress(
        10, _attacks(), levels, bar=False, write=lines.append, clock=lambda: now[0], steps=steps
    )
    assert progress.total == 10 * (4 + 2)
    progress("certification", [], 10, False)
    now[0] = 30.0
    progress.phase("class votes (n0=100)")
    assert lines == [], "none in the first minute"
    now[0] = 75.0
    progress.phase("probability bound (n=1000)")
    assert lines == [
        "robustness (test): certification, CERTIFY (sigma=0.25): probability bound (n=1000) done, 1m15s elapsed"
    ]
    now[0] = 200.0
    progress("certification", [], 10, True)
    assert lines[-1].startswith("robustness (test): certification, CERTIFY (sigma=0.25), 10/10 images; 17 %")
    out = io.StringIO()
    bar = EvaluationProgress(10, _attacks(), levels, bar=True, file=out, steps=steps)
    bar("sanity", [], 10, False)
    bar("sanity", [], 10, True)
    bar("certification", [], 10, False)
    bar.phase("class votes (n0=100)")
    bar.close()
    assert "sanity check (pgd_l2 at -10 dB)" in out.getvalue() and "certification, CERTIFY" in out.getvalue()
    assert "class votes (n0=100)" in out.getvalue() and "10/60" in out.getvalue()


def test_the_validation_probe_prints_plain_lines_when_it_runs_long(tmp_path, caplog, monkeypatch) -> None:
    """The probe runs inside Lightning's validation batch (its bar stands still meanwhile): plain lines, as the test's
    without a bar, once `interval` has passed (here 0 s, so the tiny probe prints)."""
    import functools

    from torch.utils.data import DataLoader, TensorDataset

    import adv_smooth.lightning.robustness_callback as robustness
    from adv_smooth.lightning.module import RobustClassifier
    from adv_smooth.lightning.robustness_callback import RobustnessVsSNR

    monkeypatch.setattr(robustness, "EvaluationProgress", functools.partial(EvaluationProgress, interval=0.0))
    data = DataLoader(TensorDataset(torch.rand(12, 1, 8, 8), torch.arange(12) % 3), batch_size=6)
    callback = RobustnessVsSNR(_attacks(), [40, 20], val_subset=6, log_figure=False, save_records=False)
    trainer = quiet_trainer(callbacks=[callback], default_root_dir=tmp_path, max_epochs=1, num_sanity_val_steps=0)
    trainer.fit(RobustClassifier(_net()), train_dataloaders=data, val_dataloaders=data)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("robustness (val): ")]
    assert lines and all("/6 images" in line for line in lines), caplog.text
