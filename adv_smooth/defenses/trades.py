"""TRADES (Zhang et al. 2019, "Theoretically Principled Trade-off between Robustness and Accuracy").

loss = CE(f(x), y) + beta * KL(p(x) || p(x')) / n,   x' = argmax over the ball of KL(p(x) || p(x')),

the inner maximization being TRADES' own: projected steps on the KL divergence from the clean prediction
(not on the cross-entropy with the label, as PGD training does), started at x + 0.001 N(0, I).

Decisions:

* The ball, the budget and the step come from an attack object (`attack`, passed built; the YAML's is
  conf/attack/pgd.yaml): its threat model (`norm: linf | l2`), its steps and step size, and the per-image
  SNR budget this defense sets on it (`snr`, or a fixed L-inf `eps_255`), so TRADES searches exactly the
  set PGD training and the evaluation use. Only the loss differs, so the loop is written here against the
  attack's threat model (`project`, `step`) rather than changing PGD.
* The hooks: `prepare_batch` appends the n adversarial rows after the n clean ones, with weight 0 (the
  cross-entropy reads the clean rows only) and `passes=(n, n)`: clean and adversarial images go through
  the network in separate forward passes, each normalized by its own BatchNorm batch statistics, as
  TRADES' reference code calls the model twice. `loss_terms` then adds beta * KL(clean || adversarial)
  ("trades"), differentiated through both sides as in the reference code. The adversarial rows are not
  clean (`clean_mask`), so a smoothness loss composed with TRADES reads the clean pass only; Parseval acts
  after the step and composes unchanged.
* Crafting runs in eval mode (`bn_mode="eval"` of the attack: running statistics, no update), as the
  reference code does (model.eval() while searching); gradients are taken with respect to the input only.
* beta = 0 still crafts (the adversarial pass still updates BatchNorm's running statistics): the
  parameters then follow plain training exactly (the term and the adversarial rows weigh 0).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adv_smooth.attacks.base import FORWARD_PASS, GRADIENT_PASS, TRAINING_PASS, Attack
from adv_smooth.attacks.gradients import crafting_mode, loss_and_grad
from adv_smooth.attacks.space import Space
from adv_smooth.defenses.adversarial import require_training_budget
from adv_smooth.defenses.base import Defense, TrainBatch
from adv_smooth.utils.errors import is_number, require

START_SCALE = 0.001  # the reference code's random start: x + 0.001 * N(0, I)


def kl_divergence(logits: Tensor, clean_probs: Tensor) -> Tensor:
    """Per-sample KL(clean_probs || softmax(logits)), computed in float32."""
    log_q = F.log_softmax(logits.float(), dim=1)
    return (clean_probs * (clean_probs.clamp_min(1e-12).log() - log_q)).sum(dim=1)


@dataclass
class Trades(Defense):
    """CE on the clean batch + beta * KL(p_clean || p_adv), x_adv maximizing that KL in the attack's ball.

    Args:
        beta: the weight of the KL term (TRADES' 1/lambda; higher: more robust, less accurate).
        snr: the attack's budget in dB of signal-to-noise ratio per image (lower: stronger).
        eps_255: a fixed L-inf budget in 1/255 units instead of `snr` (null: use `snr`).
        attack: the attack maximizing the KL (null: PGD).
    """

    beta: float = 6.0
    snr: float = 33.0
    eps_255: float | None = None
    attack: Attack | None = None

    @property
    def trains_adversarially(self) -> bool:
        return True

    def __post_init__(self) -> None:
        require(is_number(self.beta) and self.beta >= 0, "beta", self.beta, "a number >= 0")
        require_training_budget(self.snr, self.eps_255)
        if self.attack is None:
            from adv_smooth.attacks.pgd import PGD

            self.attack = PGD(steps=10, step_size=2.5, include_fgsm=False)
        require(
            isinstance(self.attack, Attack) and hasattr(self.attack, "steps") and hasattr(self.attack, "step_size"),
            "attack",
            self.attack,
            "an iterative attack config with steps and step_size (e.g. conf/attack/pgd.yaml)",
        )
        require(
            self.eps_255 is None or self.attack.norm == "linf",
            "eps_255",
            self.eps_255,
            f"null with an {self.attack.norm} attack (eps_255 is an L-inf budget)",
        )
        self.attack = copy.copy(self.attack)
        self.attack.budget, self.attack.eps_255 = ("fixed", self.eps_255) if self.eps_255 is not None else ("snr", None)

    def craft(self, model: nn.Module, x: Tensor) -> Tensor:
        """x' in the attack's ball around x (clamped to [0, 1]) that maximizes KL(p(x) || p(x'))."""
        attack = self.attack
        with crafting_mode(model, attack.bn_mode), torch.no_grad():
            space = Space.of(model, attack.space, attack.clip)
            z = space.from_pixel(x.detach())

            def f(z_in: Tensor) -> Tensor:
                return model(space.to_pixel(z_in))

            clean = F.softmax(f(z).float(), dim=1)
            eps = attack._eps(z, self.snr)
            alpha = attack.step_size * eps / attack.steps
            delta = attack.threat.project(START_SCALE * attack._normal(z), eps)
            for _ in range(attack.steps):
                point = space.box(z + delta)
                _, _, grad = loss_and_grad(f, point, clean, loss_fn=kl_divergence)
                delta = attack.threat.project(point - z + attack.threat.step(grad, alpha), eps)
            return space.to_pixel(space.box(z + delta)).detach()

    def extra_passes_per_image(self) -> float:
        """Crafting (the clean prediction, then `steps` KL gradients) and the adversarial row each image adds to
        the training pass (see `Defense.extra_passes_per_image`)."""
        return FORWARD_PASS + self.attack.steps * GRADIENT_PASS + TRAINING_PASS

    def prepare_batch(self, model: nn.Module, batch: TrainBatch) -> TrainBatch:
        n = len(batch.targets)
        x_adv = self.craft(model, batch.inputs).to(batch.inputs.dtype)
        clean_rows = torch.arange(2 * n, device=batch.inputs.device) < n
        return batch.replace(
            inputs=torch.cat([batch.inputs, x_adv]),
            targets=torch.cat([batch.targets, batch.targets]),
            clean_mask=torch.cat([batch.clean_mask, torch.zeros_like(batch.clean_mask)]),
            clean_count=batch.clean_count,
            weight=torch.where(clean_rows, torch.cat([batch.weight, batch.weight]), 0.0),
            passes=(n, n),
        )

    def loss_terms(self, batch: TrainBatch, logits: Tensor, activations: list[Tensor] | None) -> dict[str, Tensor]:
        n = logits.shape[0] // 2
        clean, adversarial = logits[:n], logits[n:]
        kl = kl_divergence(adversarial, F.softmax(clean.float(), dim=1)).sum() / n
        return {"trades": self.beta * kl}
