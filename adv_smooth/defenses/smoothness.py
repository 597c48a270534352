"""The Laplacian power smoothness defense (Lassance, Gripon, Ortega 2018, "Laplacian Power Networks").

For each tapped activation A_l, a similarity graph over the batch's clean samples and the label variation
s_l = trace(Y^T L^m Y) over it (`laplacian.laplacian_smoothness`: the graph, its two dense forms and their
hand-written backward passes, the cost model); the loss asks s_l to change little from one layer to the next,
so class boundaries move smoothly through the network instead of being drawn in one layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from adv_smooth.defenses.base import Defense, TrainBatch
from adv_smooth.defenses.laplacian import laplacian_smoothness
from adv_smooth.utils.errors import UserError, is_int, require


@dataclass
class LaplacianSmoothness(Defense):
    """Loss gamma^m * mean_l |s_l - s_{l-1}| over consecutive tapped layers, on clean samples only.

    Only clean samples enter the graph: with adversarial training, mixing the adversarial half in
    hurt (the report, section 4.2.2). `layers` picks taps by index into the model's activation list
    (negative indices count from the end); None uses all of them.

    Args:
        gamma: the smoothness weight (the loss is gamma^m * mean |s_l - s_{l-1}|).
        m: the Laplacian power: s = trace(Y^T L^m Y).
        k: keep a symmetric k-nearest-neighbour graph over the batch (0: the full cosine graph).
        layers: indices of the tapped activations (negative: from the end); null: every ReLU output.
    """

    gamma: float = 0.01
    m: int = 2
    k: int = 0
    layers: Sequence[int] | None = None
    knn_self: bool = False  # True: k counts the node itself, as the original code did (k - 1 others)

    def __post_init__(self) -> None:
        require(isinstance(self.gamma, (int, float)) and self.gamma >= 0, "gamma", self.gamma, "a number >= 0")
        require(is_int(self.m) and self.m >= 1, "m", self.m, "an integer >= 1")
        require(is_int(self.k) and self.k >= 0, "k", self.k, "an integer >= 0 (0 = dense graph)")
        require(isinstance(self.knn_self, bool), "knn_self", self.knn_self, "true or false")
        require(
            not (self.knn_self and self.k == 1),
            "k",
            self.k,
            "0 (dense graph) or >= 2 with knn_self=true (k=1 keeps only the node itself: an empty graph)",
        )
        if self.layers is not None:
            self.layers = list(self.layers)
            require(
                all(is_int(i) for i in self.layers) and len(self.layers) >= 2,
                "layers",
                self.layers,
                "null (all taps) or a list of at least 2 integer tap indices",
            )
        self.needs_activations = True

    @property
    def neighbours(self) -> int:
        """Other nodes each node keeps in the kNN graph (0: the dense graph)."""
        return self.k - 1 if self.knn_self and self.k > 0 else self.k

    def _selected(self, activations: list[Tensor]) -> list[Tensor]:
        if self.layers is None:
            chosen = activations
        else:
            n = len(activations)
            require(
                all(-n <= i < n for i in self.layers),
                "layers",
                self.layers,
                f"indices into the model's {n} tapped activations",
            )
            chosen = [activations[i] for i in self.layers]
        if len(chosen) < 2:
            raise UserError(f"the smoothness loss needs at least 2 tapped activations, the model gives {len(chosen)}")
        return chosen

    def loss_terms(self, batch: TrainBatch, logits: Tensor, activations: list[Tensor] | None) -> dict[str, Tensor]:
        if activations is None:
            raise ValueError("LaplacianSmoothness needs the model's activations (needs_activations=True)")
        taps = self._selected(activations)
        n = len(batch.clean_mask)
        # The count comes from the host when the defenses before this one know it (no per-step sync), and
        # `nonzero_static` sizes the index with it instead of asking the device how many rows are clean.
        n_clean = batch.clean_total()
        if n_clean < 2:
            raise UserError(
                f"the smoothness loss needs at least 2 clean samples per batch, got {n_clean} of {n}: "
                "raise the batch size or lower the adversarial fraction"
            )
        targets = batch.targets
        if n_clean < n:
            clean = torch.nonzero_static(batch.clean_mask, size=n_clean).squeeze(1)
            taps = [a.index_select(0, clean) for a in taps]
            targets = targets.index_select(0, clean)
        y = F.one_hot(targets, num_classes=logits.shape[1])
        s = torch.stack([laplacian_smoothness(a, y, self.m, self.neighbours) for a in taps])
        return {"smooth": self.gamma**self.m * (s[1:] - s[:-1]).abs().mean()}
