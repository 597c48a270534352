"""The training bar shows no `v_num` (the last 4 characters of the run's name: `,20]`)."""

from __future__ import annotations

import pytest

from adv_smooth.lightning.progress_bar import ProgressBar
from tests.conftest import compose_config


def test_the_bar_leaves_out_v_num(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytorch_lightning.callbacks import TQDMProgressBar

    monkeypatch.setattr(TQDMProgressBar, "get_metrics", lambda self, t, m: {"v_num": ",20]", "loss": 0.5})
    assert ProgressBar().get_metrics(None, None) == {"loss": 0.5}
    assert compose_config().callbacks.progress_bar._target_ == "adv_smooth.lightning.progress_bar.ProgressBar"
