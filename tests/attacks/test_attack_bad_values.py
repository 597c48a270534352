"""Every attack refuses a bad option in one line naming the key and the value (what the CLI prints)."""

from __future__ import annotations

import pytest

from adv_smooth.attacks import FGSM, PGD
from adv_smooth.attacks.apgd import APGD
from adv_smooth.attacks.fmn import FMN
from adv_smooth.attacks.square import Square
from adv_smooth.utils.errors import UserError

SHARED = [
    ({"norm": "l3"}, "norm"),
    ({"norm": "l2", "budget": "fixed", "radius": -0.1}, "radius"),
    ({"budget": "fixed"}, "eps_255"),
    ({"budget": "linf"}, "budget"),
]
CASES = {
    FGSM: [({"magnitude": "gauss"}, "magnitude"), ({"norm": "l2", "magnitude": "uniform"}, "magnitude")],
    PGD: [({"steps": 0}, "steps"), ({"step_size": 0}, "step_size"), ({"restarts": 0}, "restarts")],
    APGD: [
        ({"steps": 0}, "steps"),
        ({"loss": "cw"}, "loss"),
        ({"targets": -1}, "targets"),
        ({"restarts": 0}, "restarts"),
        ({"rho": 1.5}, "rho"),
    ],
    Square: [({"queries": 0}, "queries"), ({"queries": 2.5}, "queries"), ({"p_init": 0.0}, "p_init")],
    FMN: [({"steps": 0}, "steps"), ({"gamma_init": 1.5}, "gamma_init"), ({"alpha_init": -1.0}, "alpha_init")],
}
PARAMS = [(cls, kwargs, key) for cls, cases in CASES.items() for kwargs, key in [*cases, *SHARED]]


@pytest.mark.parametrize(("cls", "kwargs", "key"), PARAMS, ids=[f"{c.__name__}-{k}" for c, _, k in PARAMS])
def test_bad_values_are_one_line_user_errors(cls: type, kwargs: dict, key: str) -> None:
    with pytest.raises(UserError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{key}="), message
