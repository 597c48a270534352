"""The end-of-run summary says which epoch each accuracy belongs to."""

from __future__ import annotations

from adv_smooth.app.summary import format_summary


def _results(**extra) -> dict:
    return {
        "choices": {"dataset": "digits", "model": "m", "defense": "vanilla"},
        "wall_time_s": 1.0,
        "fit": {"val/acc": 0.95},
        "metrics": {"test/acc": 0.9},
        **extra,
    }


def test_val_is_the_last_epoch_and_test_the_best_checkpoints() -> None:
    text = format_summary(_results(epochs=8, best_epoch=5, best_checkpoint="x/epoch005-val_acc0.95.ckpt"))
    assert "val accuracy: 95.00 % (epoch 8, the last)" in text
    assert "test accuracy: 90.00 % (weights of epoch 6, the best on validation)" in text


def test_without_a_checkpoint_the_test_uses_the_last_weights() -> None:
    text = format_summary(_results(epochs=3, best_epoch=None, best_checkpoint=""))
    assert "test accuracy: 90.00 % (weights of epoch 3, the last)" in text


def test_an_evaluation_has_no_epochs_to_name() -> None:
    text = format_summary({"wall_time_s": 1.0, "metrics": {"test/acc": 0.5}})
    assert "test accuracy: 50.00 %\n" in text + "\n" and "epoch" not in text


def test_eval_checkpoint_last_reports_the_final_weights() -> None:
    text = format_summary(_results(epochs=4, best_epoch=1, best_checkpoint="x/epoch001.ckpt", tested_checkpoint=""))
    assert "test accuracy: 90.00 % (weights of epoch 4, the last)" in text


def test_one_epoch_is_singular() -> None:
    from adv_smooth.utils.text import counted

    assert "| 1 epoch |" in format_summary(_results(epochs=1, best_epoch=0, best_checkpoint=""))
    assert "| 8 epochs |" in format_summary(_results(epochs=8, best_epoch=0, best_checkpoint=""))
    assert [counted(n, "group") for n in (0, 1, 2)] == ["0 groups", "1 group", "2 groups"]
