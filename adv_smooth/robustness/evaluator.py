"""`Evaluator`: the evaluation engine, attacks x SNR levels over a split's batches, to per-image `Records`.

One engine for every caller: `evaluate_model` (a notebook, any `nn.Module` taking images in [0, 1]), the
Lightning callback (`lightning/robustness_callback.py`, which only adds sharding across processes and the gathering of
their records) and scripts. It knows no Lightning and no config system: attacks come built.

Random attacks get generators of their own, seeded from (seed, stage): their random starts and queries never
draw from the global generators (which shuffle and augment training data), so which attacks run cannot change
a training run, and an evaluation repeats exactly, whoever runs it. The test stage is `TEST_STAGE`; the
callback's validation passes the epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from adv_smooth.attacks.base import Attack
from adv_smooth.robustness.attack_configs import check_levels
from adv_smooth.robustness.batch import SANITY, Progress, evaluate_batch, records_of, sanity_attack, weak_to_strong
from adv_smooth.robustness.certify import Certifier, certificate_arrays, summarize_certified
from adv_smooth.robustness.curves import summarize
from adv_smooth.robustness.records import Records
from adv_smooth.utils.errors import require

TEST_STAGE = -1  # the stage of a test-split evaluation (validation stages are epochs, 0, 1, ...)
CERTIFICATION = "certification"  # the progress label of randomized-smoothing certification (a step once an image)


class Evaluator:
    """Every attack at every SNR level on each batch, the per-image outcomes kept, then `Records`.

    Args:
        attacks: label -> built `Attack` (their order is a cascade's order).
        snr_levels: the SNR budgets in dB (any order; evaluated weak to strong).
        cascade: AutoAttack's cascade: each attack runs only on the images every earlier one left robust (the
            worst case is unchanged, for less work; each attack's accuracy then counts the earlier ones too).
        sanity_snr_db: also run the first iterative gradient attack (L2 first) at this very low SNR, where
            accuracy should approach 0; None: off.
        seed: seeds the generators of the attacks given without one (see the module docstring).
        worst: the summary reports the per-image worst case over the attacks.
        certifier: also certify each image by randomized smoothing (`robustness/certify.py`); None: off.
        eot_samples: passes the attacks average per evaluation of a model found random before them (EOT, see
            `robustness/batch.py: evaluate_batch`); 1: single draws.
    """

    def __init__(
        self,
        attacks: Mapping[str, Attack],
        snr_levels: Sequence[float],
        cascade: bool = False,
        sanity_snr_db: float | None = None,
        seed: int = 0,
        worst: bool = True,
        certifier: Certifier | None = None,
        eot_samples: int = 20,
    ) -> None:
        require(
            isinstance(attacks, Mapping) and len(attacks) > 0 and all(isinstance(a, Attack) for a in attacks.values()),
            "attacks",
            attacks,
            "a non-empty mapping from a label to an Attack",
        )
        require(isinstance(seed, int) and not isinstance(seed, bool), "seed", seed, "an integer")
        self.attacks = dict(attacks)
        self.levels = weak_to_strong(check_levels(snr_levels))
        self.cascade = bool(cascade)
        self.sanity_snr_db = None if sanity_snr_db is None else float(sanity_snr_db)
        self.seed = seed
        self.worst = bool(worst)
        self.certifier = certifier
        require(
            isinstance(eot_samples, int) and not isinstance(eot_samples, bool) and 1 <= eot_samples <= 10_000,
            "eot_samples",
            eot_samples,
            "an integer in [1, 10000]",
        )
        self.eot_samples = eot_samples
        # the attacks whose generators this engine owns, in a fixed order (each draws its own stream)
        self._own_rng = {name: a for name, a in self.attacks.items() if a.generator is None}
        self._owns_certifier_rng = certifier is not None and certifier.generator is None

    def subset(
        self, names: Iterable[str], snr_levels: Sequence[float], sanity_snr_db: float | None = None
    ) -> Evaluator:
        """An engine for some of the attacks at other levels (e.g. a validation probe; no certification), sharing
        the attack objects and the seeding of this one: an attack draws the same stream whichever engine runs it."""
        attacks = {n: self.attacks[n] for n in names}
        part = Evaluator(attacks, snr_levels, self.cascade, sanity_snr_db, self.seed, eot_samples=self.eot_samples)
        part.worst, part._own_rng = self.worst, self._own_rng
        return part

    def steps(self) -> dict[str, str]:
        """The work besides the attacks done once an image, as progress names it: label -> display name."""
        out = {}
        name = sanity_attack(self.attacks)
        if self.sanity_snr_db is not None and name is not None:
            out[SANITY] = f"sanity check ({name} at {self.sanity_snr_db:g} dB)"
        if self.certifier is not None:
            out[CERTIFICATION] = f"certification, {self.certifier.describe()}"
        return out

    def start(self, stage: int = TEST_STAGE, seed: int | None = None, progress: Progress | None = None) -> Evaluation:
        """A fresh evaluation of one split; the attacks' random draws restart from (seed, stage) (`seed`: this
        engine's unless given, e.g. the run's seed known only once a Trainer has set it). `progress` hears of each
        attack starting and finishing on a batch (`robustness/progress.py: EvaluationProgress`)."""
        return Evaluation(self, (self.seed if seed is None else seed) * 100_003 + stage, progress)

    def run(self, model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], stage: int = TEST_STAGE) -> Records:
        """Records of `model` over `batches` of (images in [0, 1], labels), on the images' device, in order."""
        evaluation = self.start(stage)
        for x, y in batches:
            evaluation.add(model, x, y)
        return evaluation.records()

    def summarize(self, records: Records) -> dict[str, Any]:
        """The JSON summary of `records` (`robustness/curves.py: summarize`) for these attacks and levels, with the
        certified accuracies (`certified`) when this engine certified; the sandwich's check (an image certified at
        a level broken there) joins the honesty warnings, so it is warned about and reported like any other."""
        summary = summarize(records, self.attacks, self.levels, self.worst)
        if self.certifier is not None and records.certified:
            summary["certified"] = summarize_certified(records.label, records.certified, self.levels, self.certifier)
            summary["honesty"] = [*summary["honesty"], *summary["certified"].get("honesty", [])]  # one list warns
        return summary

    def seed_attacks(self, stage_seed: int, device: torch.device) -> None:
        """Give each attack without a generator of its own one, seeded from `stage_seed`, on `device` (the
        certifier's after every attack's stream, so adding it changes no attack's draws)."""
        for i, attack in enumerate(self._own_rng.values()):
            attack.generator = torch.Generator(device=device).manual_seed(stage_seed * 97 + i)
        if self._owns_certifier_rng:
            seed = stage_seed * 97 + len(self._own_rng)
            self.certifier.generator = torch.Generator(device=device).manual_seed(seed)


class Evaluation:
    """One split being evaluated: per-image outcomes stay on the device until `records()` reads them back once."""

    def __init__(self, evaluator: Evaluator, stage_seed: int, progress: Progress | None = None) -> None:
        self.evaluator = evaluator
        self.progress = progress
        self._stage_seed: int | None = stage_seed  # applied at the first batch, on its device
        self._batches: list[dict[str, Any]] = []
        self._seen = 0

    def add(self, model: nn.Module, x: Tensor, y: Tensor, index: Tensor | None = None) -> None:
        """Attack one batch. `index`: the images' places in the split (default: the next ones, in order)."""
        engine = self.evaluator
        if self._stage_seed is not None:
            engine.seed_attacks(self._stage_seed, x.device)
            self._stage_seed = None
        if index is None:
            index = torch.arange(self._seen, self._seen + len(y))
        self._seen += len(y)
        out = evaluate_batch(
            model,
            x,
            y,
            engine.attacks,
            engine.levels,
            engine.cascade,
            engine.sanity_snr_db,
            engine.eot_samples,
            self.progress,
        )
        if engine.certifier is not None:
            report = self.progress if self.progress is not None else (lambda *event: None)
            report(CERTIFICATION, [], len(y), False)
            phase = getattr(self.progress, "phase", None)
            out["certified"] = certificate_arrays(engine.certifier.certify(model, x, phase))
            report(CERTIFICATION, [], len(y), True)
        out["label"], out["index"] = y, index
        self._batches.append(out)

    def records(self) -> Records:
        """The host-side records of every batch added (read back once)."""
        engine = self.evaluator
        return records_of(self._batches, engine.attacks, engine.levels, engine.cascade)
