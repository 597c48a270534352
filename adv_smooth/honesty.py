"""Honesty checks on a robustness curve: signs that the attack, not the model, is failing.

Pure functions over accuracies so the training callback, checkpoint evaluation and the sweep
report all apply the same rules. Each warning names its evidence and the likely cause:
- accuracy that rises as the noise grows: the attack is not finding the worst case it is allowed
  (gradient masking; Carlini et al. 2019, "On Evaluating Adversarial Robustness", section 5.2);
- an iterative attack (PGD) scoring higher accuracy than single-step FGSM at the same budget: the
  local gradient is uninformative (masked/obfuscated gradients; Carlini et al. 2019);
- adversarial accuracy above clean accuracy: label leaking, the model learned to read the
  perturbation crafted from the true label (Kurakin et al. 2016).
"""

from __future__ import annotations

from collections.abc import Mapping

TOLERANCE = 0.005  # half a percentage point: below this, differences are sampling noise on small sets


def level_key(level: float) -> str:
    """`snr33` for 33.0, `snr22.5` otherwise: the scalar names used everywhere."""
    return f"snr{int(level)}" if float(level).is_integer() else f"snr{level:g}"


def check_curves(
    clean_acc: float, curves: Mapping[str, Mapping[float, float]], tolerance: float = TOLERANCE
) -> list[dict[str, str]]:
    """Warnings for `curves[attack][snr_level] = accuracy` (fractions in [0, 1])."""
    warnings: list[dict[str, str]] = []
    for attack, curve in curves.items():
        levels = sorted(curve, reverse=True)  # weak noise (high SNR) first
        for weak, strong in zip(levels, levels[1:]):
            if curve[strong] > curve[weak] + tolerance:
                warnings.append({
                    "check": "non_monotone",
                    "attack": attack,
                    "message": (
                        f"{attack}: accuracy rises as the noise grows ({100 * curve[weak]:.2f} % at {weak:g} dB -> "
                        f"{100 * curve[strong]:.2f} % at {strong:g} dB); a stronger perturbation should not help: "
                        "likely gradient masking, evaluate with PGD (Carlini et al. 2019)"
                    ),
                })
        for level in levels:
            if curve[level] > clean_acc + tolerance:
                warnings.append({
                    "check": "above_clean",
                    "attack": attack,
                    "message": (
                        f"{attack}: accuracy under attack at {level:g} dB ({100 * curve[level]:.2f} %) exceeds clean "
                        f"accuracy ({100 * clean_acc:.2f} %): likely label leaking; craft training adversaries from "
                        "predicted labels (defense.labels=predicted, Kurakin et al. 2016)"
                    ),
                })
    single, iterative = curves.get("fgsm"), curves.get("pgd")
    if single and iterative:
        for level in sorted(set(single) & set(iterative), reverse=True):
            if iterative[level] > single[level] + tolerance:
                warnings.append({
                    "check": "iterative_weaker",
                    "attack": "pgd",
                    "message": (
                        f"PGD scores higher accuracy than FGSM at {level:g} dB ({100 * iterative[level]:.2f} % vs "
                        f"{100 * single[level]:.2f} %): an iterative attack should never be weaker; likely masked "
                        "gradients (Carlini et al. 2019)"
                    ),
                })
    return warnings
