"""The transfer matrix of a sweep: adversarial examples crafted on each model, scored by every other one.

A white-box attack on a model should be at least as strong as the same attack crafted on *another* model and
transferred: the attacker who sees the gradients has strictly more information. When a model's white-box accuracy
is above its accuracy on examples transferred from another model (on the same images, at the same budget), its own
gradients are leading the attack astray: gradient masking (Athalye et al. 2018; Carlini et al. 2019, section 5.2).
No leaderboard reports this; a sweep already holds the models to check it.

`transfer_matrix` is pure torch (the report loads the networks): `correct[source][target]` is, per image, whether
`target` classifies correctly the examples crafted on `source` (the diagonal is white-box). `masking` lists the
pairs whose transfer accuracy is below the target's white-box accuracy by more than `tolerance`, with the count of
images the white-box attack left robust and the transfer broke.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from adv_smooth.attacks.base import Attack
from adv_smooth.attacks.gradients import crafting_mode

TOLERANCE = 0.005  # half a point: below it, the difference is the attack's own noise on small sets


@dataclass
class Transfer:
    """Per-image outcomes of the attacks crafted on each source model, judged by each target model."""

    names: list[str]
    clean: dict[str, Tensor]  # model -> bool (N,): correct on the clean images
    correct: dict[str, dict[str, Tensor]]  # source -> target -> bool (N,)
    masking: list[dict[str, object]] = field(default_factory=list)

    def accuracy(self, source: str, target: str) -> float:
        return float(self.correct[source][target].float().mean())


@torch.no_grad()
def _correct(model: nn.Module, x: Tensor, y: Tensor, batch: int) -> Tensor:
    return torch.cat([model(x[i : i + batch]).argmax(dim=1) == y[i : i + batch] for i in range(0, len(y), batch)])


def transfer_matrix(
    models: Mapping[str, nn.Module],
    x: Tensor,
    y: Tensor,
    attack: Attack,
    snr_db: float | None,
    batch: int = 256,
    tolerance: float = TOLERANCE,
) -> Transfer:
    """Craft `attack` at `snr_db` on each model (images in [0, 1], every model in eval mode while it runs) and score
    the examples with every model; then flag the pairs where a transfer beats the target's white-box attack."""
    names = list(models)
    clean = {}
    for name in names:
        with crafting_mode(models[name], "eval"):
            clean[name] = _correct(models[name], x, y, batch)
    correct: dict[str, dict[str, Tensor]] = {}
    for source in names:
        with crafting_mode(models[source], "eval"):
            parts = [
                attack.perturb(models[source], x[i : i + batch], y[i : i + batch], snr_db)
                for i in range(0, len(y), batch)
            ]
        x_adv = torch.cat(parts)
        correct[source] = {}
        for target in names:
            with crafting_mode(models[target], "eval"):
                correct[source][target] = _correct(models[target], x_adv, y, batch) & clean[target]
    result = Transfer(names, clean, correct)
    for target in names:
        white = correct[target][target]
        for source in names:
            if source == target:
                continue
            transferred = correct[source][target]
            gap = float(white.float().mean() - transferred.float().mean())
            if gap > tolerance:
                result.masking.append(
                    {
                        "source": source,
                        "target": target,
                        "white_box_acc": float(white.float().mean()),
                        "transfer_acc": float(transferred.float().mean()),
                        "broken_only_by_transfer": int((white & ~transferred).sum()),
                        "images": len(y),
                    }
                )
    return result


def transfer_markdown(result: Transfer, what: str) -> list[str]:
    """The report's section: the matrix (target accuracy in %, rows = where the examples were crafted) and the
    gradient-masking flags with their counts."""
    names = result.names
    lines = [
        "## Transfer matrix",
        "",
        f"{what}. Each cell: the column model's accuracy (%) on examples crafted on the row model (and correct clean); "
        "the diagonal is white-box. A column whose white-box cell is above another cell of the column by more than "
        f"{100 * TOLERANCE:.1f} points is flagged: a transferred attack beat the model's own gradients (gradient "
        "masking, Athalye et al. 2018).",
        "",
        "| crafted on \\ scored by | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for source in names:
        cells = []
        for target in names:
            text = f"{100 * result.accuracy(source, target):.2f}"
            cells.append(f"**{text}**" if source == target else text)
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    lines.append("")
    if not result.masking:
        lines.append("No pair flagged: every model's white-box attack was at least as strong as every transfer.")
    for flag in result.masking:
        lines.append(
            f"- ⚠ gradient masking suspected in {flag['target']}: examples crafted on {flag['source']} leave "
            f"{100 * flag['transfer_acc']:.2f} % where its own gradients leave {100 * flag['white_box_acc']:.2f} %; "
            f"{flag['broken_only_by_transfer']} of {flag['images']} images were broken only by the transfer"
        )
    return lines
