"""The attacks of an `eval` config, built and checked: `{label: Attack}` from `_target_` configs, the SNR levels.

Shared by the robustness callback and checkpoint evaluation. Only a subclass of `Attack` is ever built from a
config, and every refusal is one `UserError` under the user's key (`eval.attacks.<label>...`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from adv_smooth.attacks.base import Attack
from adv_smooth.utils.errors import UserError, require


def build_attacks(attacks: Mapping[str, Any] | None) -> dict[str, Attack]:
    """`{label: Attack}` from built attacks or `_target_` configs; a `UserError` names a bad entry."""
    if attacks is None:
        from adv_smooth.attacks.fgsm import FGSM
        from adv_smooth.attacks.pgd import PGD

        return {"fgsm": FGSM(), "pgd": PGD(include_fgsm=False)}
    require(isinstance(attacks, Mapping), "eval.attacks", attacks, "a mapping from a label to an attack config")
    built: dict[str, Attack] = {}
    for label, attack in attacks.items():
        if isinstance(attack, Mapping) and "_target_" in attack:
            attack = _instantiate(f"eval.attacks.{label}", attack)
        if not isinstance(attack, Attack):
            raise UserError(
                f"eval.attacks.{label}={attack!r} is invalid: expected an attack config with a _target_ "
                "(one of conf/attack/*.yaml, e.g. +attack@eval.attacks.{label}=apgd)"
            )
        built[str(label)] = attack
    return built


def _instantiate(key: str, config: Mapping[str, Any]) -> Any:
    """Build one attack; its own one-line `UserError` (or an unknown option) is reported under `key`."""
    import hydra
    from hydra.errors import InstantiationException
    from hydra.utils import get_object

    target = config["_target_"]
    try:
        cls = get_object(str(target))  # imports the module; calls nothing
    except Exception as e:
        raise UserError(f"{key}: cannot build {target}: {str(e).splitlines()[0]}") from None
    if not (isinstance(cls, type) and issubclass(cls, Attack)):  # never call what a config merely names
        raise UserError(
            f"{key}._target_={target!r} is invalid: expected an attack class (a subclass of "
            "adv_smooth.attacks.base.Attack, e.g. one named in conf/attack/*.yaml)"
        )
    try:
        return hydra.utils.instantiate(dict(config), _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__ or e
        while cause.__cause__ is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise UserError(f"{key}.{cause}") from None
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            option = str(cause).rsplit("argument", 1)[-1].strip(" '")
            raise UserError(f"{key}.{option} is not an option of {config['_target_']}") from None
        message = str(cause).splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise UserError(f"{key}: cannot build {config['_target_']}: {message}") from None


def check_levels(snr_levels: Any) -> list[float]:
    """The SNR levels as floats: a non-empty list of finite numbers > 0 (dB)."""
    ok = isinstance(snr_levels, Sequence) and not isinstance(snr_levels, str) and len(snr_levels) > 0
    ok = ok and all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0 for s in snr_levels
    )
    shown = list(snr_levels) if isinstance(snr_levels, Sequence) and not isinstance(snr_levels, str) else snr_levels
    require(ok, "eval.snr_levels", shown, "a non-empty list of finite SNRs in dB, each > 0, e.g. [50,45,40,33]")
    return [float(s) for s in snr_levels]
