"""TRADES: its own inner maximization of the KL, the hooks' batch, beta = 0 is plain training, composition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adv_smooth.attacks import PGD
from adv_smooth.attacks.budget import snr_eps
from adv_smooth.defenses.base import Defense, TrainBatch
from adv_smooth.defenses.objective import training_objective
from adv_smooth.defenses.plain_loop import digits_tensors, train_digits
from adv_smooth.defenses.trades import START_SCALE, Trades, kl_divergence
from adv_smooth.models.preact_resnet import PreActResNet
from adv_smooth.utils.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is as fast, and safe when shared


def _model() -> PreActResNet:
    torch.manual_seed(0)
    return PreActResNet(num_classes=10, in_channels=1, width=4, blocks=(1, 1)).train()


def _batch(n: int = 12) -> TrainBatch:
    g = torch.Generator().manual_seed(1)
    return TrainBatch.clean(0.2 + 0.6 * torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g))


def test_the_batch_holds_clean_then_adversarial_rows_in_two_passes() -> None:
    batch = _batch()
    n = len(batch.targets)
    out = Trades(beta=6.0, snr=20.0).prepare_batch(_model(), batch)
    assert out.inputs.shape[0] == 2 * n and out.passes == (n, n)
    assert torch.equal(out.inputs[:n], batch.inputs) and torch.equal(out.targets[n:], batch.targets)
    assert out.weight[:n].eq(1).all() and out.weight[n:].eq(0).all()  # the CE reads the clean rows only
    assert out.clean_mask[:n].all() and not out.clean_mask[n:].any() and out.clean_count == n
    eps = snr_eps(batch.inputs, 20.0).view(-1, 1, 1, 1)  # the per-image L-inf budget of the attack's ball
    assert ((out.inputs[n:] - batch.inputs).abs() <= eps + 1e-6).all()


def test_the_inner_maximization_raises_the_kl_above_its_start() -> None:
    model, batch = _model(), _batch()
    trades = Trades(beta=1.0, snr=20.0, attack=PGD(steps=10, generator=torch.Generator().manual_seed(0)))
    model.eval()
    with torch.no_grad():
        clean = F.softmax(model(batch.inputs), dim=1)
        start = kl_divergence(model((batch.inputs + START_SCALE * torch.randn_like(batch.inputs)).clamp(0, 1)), clean)
        crafted = kl_divergence(model(trades.craft(model, batch.inputs)), clean)
    assert crafted.mean() > 10 * start.mean()


def test_the_loss_is_ce_plus_beta_times_the_mean_kl() -> None:
    model, batch = _model(), _batch()
    step = training_objective(model, Trades(beta=2.5, snr=20.0), batch)
    n = len(batch.targets)
    ce = F.cross_entropy(step.logits[:n], batch.targets)
    kl = kl_divergence(step.logits[n:], F.softmax(step.logits[:n], dim=1)).mean()
    assert step.terms["ce"].item() == pytest.approx(ce.item(), rel=1e-5)
    assert step.terms["trades"].item() == pytest.approx(2.5 * kl.item(), rel=1e-5) and kl > 0
    assert step.loss.item() == pytest.approx((ce + 2.5 * kl).item(), rel=1e-5)


def test_beta_zero_trains_the_parameters_as_plain_training() -> None:
    """Same seed and data order: the parameters after training match vanilla's (the KL term and the adversarial
    rows weigh 0); only BatchNorm's running statistics also saw the adversarial pass."""
    xtr, ytr, _, _ = digits_tensors(size=8)
    xtr, ytr = xtr[:256], ytr[:256]
    attack = PGD(steps=2, generator=torch.Generator().manual_seed(0))
    plain = train_digits(Defense(), xtr, ytr, epochs=1, blocks=(1,), width=4)
    trades = train_digits(Trades(beta=0.0, snr=20.0, attack=attack), xtr, ytr, epochs=1, blocks=(1,), width=4)
    for (name, p), q in zip(plain.named_parameters(), trades.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    moved = any(not torch.equal(a, b) for a, b in zip(plain.buffers(), trades.buffers()))
    assert moved  # the adversarial pass did run: beta = 0 is not a shortcut around the defense


def test_composes_with_smoothness_on_the_clean_pass(make_config) -> None:
    from adv_smooth.app.build import build_defense

    defense = build_defense(make_config("defense=trades_smooth", "defense.steps=2").defense)
    assert [type(d).__name__ for d in defense.defenses] == ["Trades", "LaplacianSmoothness"]
    model = _model()
    step = training_objective(model, defense, _batch())
    assert set(step.terms) == {"ce", "trades", "smooth"} and torch.isfinite(step.loss)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"beta": -1.0}, "beta"), ({"snr": 0}, "snr"), ({"eps_255": -2}, "eps_255")],
)
def test_validation(kwargs: dict, key: str) -> None:
    with pytest.raises(UserError, match=rf"^{key}=") as info:
        Trades(**kwargs)
    assert "\n" not in str(info.value)


def test_eps_255_needs_an_linf_ball() -> None:
    with pytest.raises(UserError, match="^eps_255="):
        Trades(eps_255=8.0, attack=PGD(norm="l2"))
