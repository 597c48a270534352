"""Honesty checks on a robustness evaluation: signs that the attack, not the model, is failing.

The rules look at what an attack *is* (its `Traits`: norm, budget, iterative or single-step, gradient-
based or score-based, minimum-norm), never at its label, so a renamed or new attack is checked the same
way. Each warning names its evidence and the likely cause:

- accuracy that rises as the noise grows: the attack is not finding the worst case it is allowed
  (gradient masking; Carlini et al. 2019, "On Evaluating Adversarial Robustness", section 5.2);
- adversarial accuracy above clean accuracy: label leaking (Kurakin et al. 2016);
- an iterative gradient attack weaker than a single-step one in a ball it contains, or weaker than a
  gradient-free attack (Square): the local gradient is uninformative (masked or obfuscated gradients;
  Athalye et al. 2018; Croce & Hein 2020);
- zero input gradients on a large share of correctly classified images (saturated softmax or a
  non-differentiable layer: use the DLR loss or a score-based attack);
- accuracy far from zero at a very low SNR, where the perturbation may be larger than the image: the
  attack is broken, not the model robust (Carlini et al. 2019, unbounded-budget sanity check);
- a fixed-budget attack breaking an image the minimum-norm attack called robust at that level: the
  minimum-norm attack is too weak, its curve overstates robustness;
- an iterative attack that left more than a tenth of its robust images just short of the boundary and still
  closing in at its last pace: it stopped before converging, and more steps would break some (Carlini et al. 2019);
- a random model (two identical passes disagree): said, with whether the attacks averaged over draws (EOT).

Pure functions over numbers and per-image records, shared by the training callback, checkpoint
evaluation and the sweep report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

TOLERANCE = 0.005  # half a percentage point: below this, differences are sampling noise on small sets
ZERO_GRAD_SHARE = 0.1  # zero input gradients on more than 10 % of correct images
SANITY_ACCURACY = 0.1  # accuracy above 10 % where the perturbation may be as large as the image
STILL_IMPROVING_SHARE = 0.1  # an attack still closing in at the end on more than 10 % of the robust images


@dataclass(frozen=True)
class Traits:
    """What the checks need to know of an attack."""

    norm: str = "linf"
    budget: str = "snr"
    iterative: bool = False
    uses_gradients: bool = True
    minimal_norm: bool = False
    searched: bool = True  # False for noise drawn at random (the model's loss ignored): chance, not an adversary

    @classmethod
    def of(cls, attack: Any) -> Traits:
        return cls(
            attack.norm,
            attack.budget,
            bool(attack.iterative),
            bool(attack.uses_gradients),
            bool(attack.minimal_norm),
            bool(attack.uses_labels),
        )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> Traits | None:
        return None if not isinstance(values, Mapping) else cls(**{k: values[k] for k in asdict(cls()) if k in values})

    def contains(self, other: Traits) -> bool:
        """This attack's ball contains `other`'s at every SNR level (L2 ball ⊇ the inscribed L-inf cube)."""
        if self.budget != "snr" or other.budget != "snr":
            return False
        return self.norm == other.norm or (self.norm == "l2" and other.norm == "linf")

    def dominates(self, other: Traits) -> bool:
        """An iterative gradient attack must never be weaker than a single-step or gradient-free one it contains."""
        strong = self.iterative and self.uses_gradients
        weak = not other.iterative or not other.uses_gradients
        return strong and weak and self.contains(other)


def level_key(level: float | None) -> str:
    """`snr33` for 33.0, `snr22.5` otherwise, `fixed` for a fixed budget: the scalar names used everywhere."""
    if level is None:
        return "fixed"
    return f"snr{int(level)}" if float(level).is_integer() else f"snr{level:g}"


def _warning(check: str, attack: str, message: str) -> dict[str, str]:
    return {"check": check, "attack": attack, "message": message}


def check_curves(
    clean_acc: float,
    curves: Mapping[str, Mapping[float, float]],
    traits: Mapping[str, Traits] | None = None,
    tolerance: float = TOLERANCE,
) -> list[dict[str, str]]:
    """Warnings for `curves[attack][snr_level] = accuracy` (fractions in [0, 1]) over the same images.

    Without `traits` only the shape rules run (monotone, at most clean); with them the dominance rules too. The
    shape rules skip noise drawn at random (`Traits.searched` false): its accuracy may rise with the noise or pass
    the clean one by chance on a few images, evidence of nothing; an adversary it beats is still flagged.
    """
    warnings: list[dict[str, str]] = []
    for attack, curve in curves.items():
        if traits and attack in traits and not traits[attack].searched:
            continue
        levels = sorted((lv for lv in curve if lv is not None), reverse=True)  # weak noise (high SNR) first
        for weak, strong in zip(levels, levels[1:]):
            if curve[strong] > curve[weak] + tolerance:
                warnings.append(
                    _warning(
                        "non_monotone",
                        attack,
                        (
                            f"{attack}: accuracy rises as the noise grows ({100 * curve[weak]:.2f} % at {weak:g} dB -> "
                            f"{100 * curve[strong]:.2f} % at {strong:g} dB); a stronger perturbation should not help: "
                            "likely gradient masking, evaluate with APGD and Square (Carlini et al. 2019)"
                        ),
                    )
                )
        for level in levels:
            if curve[level] > clean_acc + tolerance:
                warnings.append(
                    _warning(
                        "above_clean",
                        attack,
                        (
                            f"{attack}: accuracy under attack at {level:g} "
                            f"dB ({100 * curve[level]:.2f} %) exceeds clean "
                            f"accuracy ({100 * clean_acc:.2f} %): likely "
                            "label leaking; craft training adversaries from "
                            "predicted labels (defense.labels=predicted, Kurakin et al. 2016)"
                        ),
                    )
                )
    for strong, weak, level, acc_strong, acc_weak in _dominance_pairs(curves, traits or {}):
        if acc_strong > acc_weak + tolerance:
            warnings.append(_dominance_warning(strong, weak, (traits or {})[weak], level, acc_strong, acc_weak))
    return warnings


def _dominance_pairs(curves: Mapping[str, Mapping[float, float]], traits: Mapping[str, Traits]):
    for strong, t_strong in traits.items():
        for weak, t_weak in traits.items():
            if strong == weak or strong not in curves or weak not in curves or not t_strong.dominates(t_weak):
                continue
            for level in sorted(set(curves[strong]) & set(curves[weak]) - {None}, reverse=True):
                yield strong, weak, level, curves[strong][level], curves[weak][level]


def _dominance_warning(
    strong: str, weak: str, t_weak: Traits, level: float, acc_strong: float, acc_weak: float
) -> dict[str, str]:
    if not t_weak.uses_gradients:
        return _warning(
            "gradient_free_stronger",
            strong,
            (
                f"{weak} (gradient-free) breaks more images than {strong} at {level:g} dB ({100 * acc_weak:.2f} % vs "
                f"{100 * acc_strong:.2f} % accuracy on the same images): the gradients mislead the attack, likely "
                "gradient masking; trust the lower number (Athalye et al. 2018)"
            ),
        )
    return _warning(
        "iterative_weaker",
        strong,
        (
            f"{strong} (iterative) scores higher accuracy than {weak} (single step) at {level:g} dB "
            f"({100 * acc_strong:.2f} % vs {100 * acc_weak:.2f} % on the same images): an iterative attack should "
            "never be weaker; likely masked gradients (Carlini et al. 2019)"
        ),
    )


def check_records(records: Any, traits: Mapping[str, Traits], tolerance: float = TOLERANCE) -> list[dict[str, str]]:
    """Every rule, on per-image records (`adv_smooth.robustness.records.Records`) of one split."""
    clean = records.clean
    clean_acc = float(clean.mean()) if records.n else 0.0
    curves = {a: records.accuracy(a) for a in records.attacks if a not in traits or traits[a].searched}
    warnings = check_curves(clean_acc, curves, None, tolerance)
    warnings += _pairwise(records, traits, tolerance)
    if records.zero_grad is not None and clean.any():
        share = float(records.zero_grad[clean].mean())
        if share > ZERO_GRAD_SHARE:
            warnings.append(
                _warning(
                    "zero_gradients",
                    "*",
                    (
                        "the input gradient of the loss is exactly zero on "
                        f"{100 * share:.1f} % of the correctly classified "
                        "images: gradient attacks cannot move them (saturated softmax or a non-differentiable layer); "
                        "check with the DLR loss (APGD loss=dlr) and the score-based Square attack"
                    ),
                )
            )
    for name, correct in records.sanity_correct.items():
        acc = float(correct.mean()) if correct.size else 0.0
        if acc > SANITY_ACCURACY:
            warnings.append(
                _warning(
                    "unbounded_sanity",
                    name,
                    (
                        f"{name}: {100 * acc:.1f} % accuracy at "
                        f"{records.sanity_level:g} dB, where the perturbation may be "
                        "larger than the image: accuracy should approach "
                        "0; the attack is failing, not the model robust "
                        "(Carlini et al. 2019, section 5.2)"
                    ),
                )
            )
    warnings += _minimal_norm_too_weak(records, traits, tolerance)
    warnings += _not_converged(records)
    warnings += _randomized(records)
    return warnings


def _randomized(records: Any) -> list[dict[str, str]]:
    """A model whose logits differ between two identical passes (dropout left on, random transforms, a smoothed
    classifier): gradient attacks on single draws overstate its robustness (Athalye et al. 2018); say whether the
    attacks averaged over draws (EOT) and how many images were affected."""
    random = records.randomized
    if random is None or not random.any():
        return []
    seen = f"the model's logits differed between two identical passes on {int(random.sum())} of {records.n} images"
    if records.eot_samples > 1:
        how = (
            f"the attacks averaged {records.eot_samples} passes per step (Expectation over Transformation, Athalye "
            "et al. 2018); a random model's accuracy varies from run to run, so compare means over seeds"
        )
    else:
        how = (
            "the attacks used single draws, which overstate a random model's robustness: raise eval.eot_samples "
            "(Athalye et al. 2018), or make the model deterministic (eval mode, no random transforms)"
        )
    return [_warning("randomized", "*", f"{seen}: {how}")]


def _not_converged(records: Any, share: float = STILL_IMPROVING_SHARE) -> list[dict[str, str]]:
    """An iterative attack that left more than `share` of its robust images just short of the boundary, still
    closing in (`adv_smooth.attacks.base.needs_more_steps`), stopped too early there: more steps would likely break
    some (Carlini et al. 2019: check that the attack converged). Per attack and level, with the counts. Checked on
    the default digits network (benchmarks/results/convergence_check.json, H200): of the 37 images L2 PGD-10 left
    robust at 20 dB and this rule flagged, 50 steps broke 11; of the 99 it did not flag, 1."""
    warnings = []
    for name, rec in records.attacks.items():
        if rec.improving is None:
            continue
        for i, level in enumerate(rec.levels):
            robust = (rec.adv_correct[i] == 1) & records.clean
            rising = int((robust & (rec.improving[i] == 1)).sum())
            if robust.any() and rising > share * robust.sum():
                where = "at the fixed budget" if level is None else f"at {level:g} dB"
                warnings.append(
                    _warning(
                        "not_converged",
                        name,
                        f"{name} {where}: still closing in on the boundary at its last step on {rising} of the "
                        f"{int(robust.sum())} images it left robust ({100 * rising / robust.sum():.0f} %, more than "
                        f"{100 * share:.0f} %; at its last pace it would reach their boundary within a few more "
                        f"steps): the attack needed more steps, and more would likely break some; raise its steps "
                        "before trusting this accuracy",
                    )
                )
    return warnings


def _pairwise(records: Any, traits: Mapping[str, Traits], tolerance: float) -> list[dict[str, str]]:
    """Dominance rules on the images both attacks ran on (a cascade skips what an earlier one broke)."""
    warnings = []
    for strong, t_strong in traits.items():
        for weak, t_weak in traits.items():
            if strong == weak or not t_strong.dominates(t_weak):
                continue
            s_rec, w_rec = records.attacks[strong], records.attacks[weak]
            for level in [lv for lv in s_rec.levels if lv is not None and lv in w_rec.levels]:
                s_out = s_rec.adv_correct[s_rec.levels.index(level)]
                w_out = w_rec.adv_correct[w_rec.levels.index(level)]
                both = (s_out != -1) & (w_out != -1)
                if both.sum() == 0:
                    continue
                acc_strong, acc_weak = float((s_out[both] == 1).mean()), float((w_out[both] == 1).mean())
                if (acc_strong - acc_weak) * both.sum() / records.n > tolerance:
                    warnings.append(_dominance_warning(strong, weak, t_weak, level, acc_strong, acc_weak))
    return warnings


def _minimal_norm_too_weak(records: Any, traits: Mapping[str, Traits], tolerance: float) -> list[dict[str, str]]:
    warnings = []
    for minimal, t_min in traits.items():
        rec = records.attacks[minimal]
        if not t_min.minimal_norm or rec.min_snr_db is None:
            continue
        for other, t_other in traits.items():
            if other == minimal or t_other.minimal_norm or not t_min.contains(t_other):
                continue
            o_rec = records.attacks[other]
            for i, level in enumerate(o_rec.levels):
                if level is None:
                    continue
                missed = records.clean & (o_rec.adv_correct[i] == 0) & (rec.min_snr_db < level)
                share = float(missed.mean()) if records.n else 0.0
                if share > tolerance:
                    warnings.append(
                        _warning(
                            "minimal_norm_too_weak",
                            minimal,
                            (
                                f"{other} breaks {100 * share:.1f} % of the "
                                f"images at {level:g} dB that {minimal} called "
                                f"robust there (minimal SNR below {level:g} dB): "
                                "the minimum-norm attack is too weak, its "
                                "curve overstates robustness; give it more steps"
                            ),
                        )
                    )
    return warnings
