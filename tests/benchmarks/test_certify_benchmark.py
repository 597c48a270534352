"""benchmarks/certify.py: both variants do the same work (never timings), at the tiniest size."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks import certify


def test_plain_loop_matches_the_tool_on_a_deterministic_network() -> None:
    """A network whose answer ignores the noise: both certify the same class with the same radius."""

    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot((x.flatten(1)[:, :1] * 0).long().squeeze(1) + 3, 10).float()

    x = torch.rand(4, 1, 8, 8)
    plain = certify.plain_certify(Constant(), x, 0.5, 10, 100, 0.001, 64)
    expected = 0.5 * float(torch.special.ndtri(torch.tensor(0.001 ** (1 / 100), dtype=torch.float64)))
    assert (plain[:, 0] == 3).all() and np.allclose(plain[:, 1], expected), "k = n: the bound is alpha^(1/n)"
    result = certify.compare(Constant(), x, torch.full((4,), 3), 0.5, 10, 100, 64, reps=1)
    for name in ("tool", "plain"):
        assert result[name]["certified_acc_radius0"] == 1.0
        assert np.isclose(result[name]["mean_radius_right"], expected)
        assert result[name]["samples_per_s"]["median"] > 0
    assert "speedup" in certify.format_report(result)
