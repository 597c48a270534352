"""Start-up validation of what no single object checks, before any data is loaded.

A bad value found after a dataset download, or an hour into training, wastes that time; found here,
it costs nothing. Each failure is a `UserError` naming the key, the value and what is allowed.
Objects check their own values: defenses and attacks in their constructors, Lightning in the Trainer
(built before the data, its refusals reworded by `app.build.build_trainer`: precisions, accelerators,
strategies, devices are Lightning's lists, not copied here). What stays here: values Lightning or torch
would accept silently but no run can use (max_epochs=0, a seed Lightning would replace at random),
rules across keys (min_epochs <= max_epochs, a validation split for eval.checkpoint=best, one checkpoint
schedule) and files on disk (dataset.root, resume). A key that a group does not define is not checked.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from adv_smooth.app.preflight.magnitudes import check_magnitudes
from adv_smooth.lightning.schedules import MILESTONES_ALLOWED, SHAPES, valid_milestones
from adv_smooth.utils.errors import (
    MAX_COUNT,
    MAX_FLOAT,
    UserError,
    file_problem,
    folder_problem,
    is_int,
    is_number,
    require,
)

Rule = tuple[Callable[[Any], bool], str]  # (accepts value, what is allowed)

MAX_SEED = 2**32 - 1  # Lightning's seed_everything silently picks a random seed outside [0, 2**32 - 1]
CHECKPOINT_CHOICES = ("best", "last")  # eval.checkpoint: the weights the test split sees


def _int_at_least(low: int, high: int = MAX_COUNT) -> Rule:
    return (lambda v: is_int(v) and low <= v <= high), f"an integer in [{low}, {high}]"


def _number(low: float, high: float | None = None, low_open: bool = False, high_open: bool = True) -> Rule:
    """A finite number in the interval [low, high) by default; `low_open` excludes `low` itself. Without a `high`,
    the bound is `MAX_FLOAT`, included: every number has a stated upper bound."""
    if high is None:
        high, high_open = MAX_FLOAT, False

    def ok(v: Any) -> bool:
        if not is_number(v) or (v <= low if low_open else v < low):
            return False
        return v < high if high_open else v <= high

    lo = "(" if low_open else "["
    return ok, f"a number in {lo}{low:g}, {high:g}{')' if high_open else ']'}"


def _one_of(*choices: Any) -> Rule:
    """Exact choices (True == 1 in Python, so booleans are refused explicitly); 16 and "16" are listed once."""
    listed = ", ".join(dict.fromkeys(map(str, choices)))
    return (lambda v: v in choices and not isinstance(v, bool)), f"one of {listed}"


def _or_null(rule: Rule) -> Rule:
    accepts, allowed = rule
    return (lambda v: v is None or accepts(v)), f"{allowed}, or null"


def _int_list(low: int, increasing: bool = False, non_empty: bool = True) -> Rule:
    def ok(v: Any) -> bool:
        if not isinstance(v, (list, tuple)) or (non_empty and not v):
            return False
        if not all(is_int(x) and low <= x <= MAX_COUNT for x in v):
            return False
        return not increasing or all(a < b for a, b in zip(v, v[1:]))

    what = "a non-empty list" if non_empty else "a list"
    return ok, f"{what} of integers in [{low}, {MAX_COUNT}]{', strictly increasing' if increasing else ''}"


BOOL: Rule = (lambda v: isinstance(v, bool), "true or false")
INT_GE0, INT_GE1 = _int_at_least(0), _int_at_least(1)
FRACTION: Rule = _number(0, 1)


def _batch_limit(v: Any) -> bool:
    """`limit_*_batches`: a number of batches (int) or a fraction of them (float in [0, 1])."""
    return v is None or (is_int(v) and 0 <= v <= MAX_COUNT) or (isinstance(v, float) and 0 <= v <= 1)


BATCH_LIMIT: Rule = (_batch_limit, f"a number of batches (integer in [0, {MAX_COUNT}]), a fraction in [0, 1], or null")


TOP: dict[str, Rule] = {
    "seed": ((lambda v: is_int(v) and 0 <= v <= MAX_SEED), f"an integer in [0, {MAX_SEED}]"),
    "test": BOOL,
    "resume": ((lambda v: v is None or (isinstance(v, str) and v != "")), "a checkpoint file, last, or null"),
}
OPTIM: dict[str, Rule] = {
    "lr": _number(0, low_open=True),
    "momentum": FRACTION,
    "weight_decay": _number(0),
    "schedule": _one_of(*SHAPES),
    "milestones": (valid_milestones, MILESTONES_ALLOWED),  # epochs or fractions of the run
    "gamma": _number(0, low_open=True),
    "reset_momentum": BOOL,
}
EVAL: dict[str, Rule] = {
    "checkpoint": _one_of(*CHECKPOINT_CHOICES),
}
TRAINER: dict[str, Rule] = {
    "max_epochs": INT_GE1,
    "min_epochs": _or_null(INT_GE0),
    "max_steps": _int_at_least(-1),
    "log_every_n_steps": INT_GE1,
    "check_val_every_n_epoch": _or_null(INT_GE1),
    "num_sanity_val_steps": _int_at_least(-1),
    "accumulate_grad_batches": INT_GE1,
    "gradient_clip_val": _or_null(_number(0)),
    "limit_train_batches": BATCH_LIMIT,
    "limit_val_batches": BATCH_LIMIT,
    "limit_test_batches": BATCH_LIMIT,
    "deterministic": ((lambda v: isinstance(v, bool) or v == "warn"), "true, false or warn"),
    "inference_mode": BOOL,
    "enable_progress_bar": BOOL,
    "enable_model_summary": BOOL,
    "enable_checkpointing": BOOL,
    "sync_batchnorm": BOOL,
    "benchmark": _or_null(BOOL),
}
CHECKPOINT: dict[str, Rule] = {
    "every_n_epochs": _or_null(INT_GE0),
    "every_n_train_steps": _or_null(INT_GE0),
    "save_top_k": _int_at_least(-1),
    "save_last": ((lambda v: v is None or isinstance(v, bool) or v == "link"), "true, false, link or null"),
    "mode": _one_of("min", "max"),
    "save_on_train_epoch_end": _or_null(BOOL),
}


def check_config(cfg: DictConfig) -> None:
    """Raise a `UserError` for the first value no run could use; cheap, touches no data."""
    check_magnitudes(cfg)
    _check({key: cfg[key] for key in TOP if key in cfg}, "", TOP)
    dataset = _plain(cfg.dataset)  # its values: the data module's constructor (see `app.training_run`)
    _check_data_root(dataset)
    _check_own_options(_plain(cfg.model), "model")
    _check(_plain(cfg.optim), "optim.", OPTIM)
    eval_cfg = _plain(cfg.get("eval"))
    _check(eval_cfg, "eval.", EVAL)
    _check_defense(_plain(cfg.get("defense")))
    _check_validation_split(dataset, eval_cfg)
    trainer = _plain(cfg.trainer)
    _check(trainer, "trainer.", TRAINER)
    _check_trainer(trainer)
    callbacks = cfg.get("callbacks") or {}
    if callbacks.get("model_checkpoint"):
        checkpoint = _plain(callbacks.model_checkpoint)
        _check(checkpoint, "callbacks.model_checkpoint.", CHECKPOINT)
        _check_checkpoint_schedule(checkpoint)
    _check_resume(cfg.get("resume"))


def _plain(node: DictConfig | None) -> dict[str, Any]:
    """Resolved plain values: `${...}` interpolations become what the run would see."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def _check(values: Mapping[str, Any], prefix: str, rules: Mapping[str, Rule]) -> None:
    for key, (accepts, allowed) in rules.items():
        if key in values:
            require(accepts(values[key]), prefix + key, values[key], allowed)


def _check_own_options(node: Mapping[str, Any], key: str) -> None:
    """Run the `check_options` of the class a node names (the model's), if it has one: the object's own rules,
    before the data that building it needs. A target that cannot be imported is left to `instantiate`."""
    import hydra

    try:
        target = hydra.utils.get_class(str(node["_target_"])) if node.get("_target_") else None
    except Exception:  # noqa: BLE001 - reported by instantiate, with the key, when the object is built
        return
    check = getattr(target, "check_options", None)
    if callable(check):  # the options it checks; a key the class does not take is refused when it is built
        takes = inspect.signature(check).parameters
        try:
            check(**{name: value for name, value in node.items() if name in takes})
        except UserError as e:  # it names its parameter (`width=0 is invalid`); the user set `model.width`
            raise UserError(f"{key}.{e}") from None


def _check_data_root(dataset: Mapping[str, Any]) -> None:
    """With download off, a dataset that reads files needs its root folder; the files are its business."""
    cls = _dataset_class(dataset)
    if dataset.get("download", True) or (cls is not None and not cls.needs_files):
        return
    root = dataset.get("root")
    problem = folder_problem(Path(str(root)).expanduser()) if root else "is not set"
    require(
        problem is None,
        "dataset.root",
        root,
        f"an existing folder (dataset.download=false, so the files must already be there); it {problem}",
    )


def _defense_rules() -> dict[str, Rule]:
    """The defense knobs whose allowed values live in the attack and defense modules (imported on demand)."""
    from adv_smooth.attacks.base import BN_MODES
    from adv_smooth.attacks.fgsm import MAGNITUDES

    return {
        "magnitude": _one_of(*MAGNITUDES),
        "bn_mode": _one_of(*BN_MODES),
        "separate_passes": BOOL,
        "knn_self": BOOL,
    }


def _check_defense(defense: Mapping[str, Any]) -> None:
    """Names the constructors would also refuse, but here under the user's key (`defense.magnitude`), before
    Hydra nests them into an attack config whose own message would name the attack's option instead."""
    _check(defense, "defense.", _defense_rules())


def _check_validation_split(dataset: Mapping[str, Any], eval_cfg: Mapping[str, Any]) -> None:
    """`val_fraction=0` (train on everything, as LPN did) leaves nothing to pick a best checkpoint on."""
    if dataset.get("val_fraction") != 0 or eval_cfg.get("checkpoint", "best") != "best":
        return
    cls = _dataset_class(dataset)
    if cls is not None and cls.ships_val_split(dataset):  # SVHN's extra[:N] / a folder's val/: a split of their own
        return
    raise UserError(
        "eval.checkpoint='best' is invalid: dataset.val_fraction=0 leaves no validation split to choose the best "
        "checkpoint on; use eval.checkpoint=last (test the last epoch's weights) or a val_fraction in (0, 1)"
    )


def _dataset_class(dataset: Mapping[str, Any]) -> Any:
    """The data module class `dataset._target_` names (its facts: `needs_files`, `ships_val_split`), or None when
    it is not one (building it reports that)."""
    import hydra

    from adv_smooth.data.base import ImageDataModule

    try:
        cls = hydra.utils.get_class(str(dataset["_target_"])) if dataset.get("_target_") else None
    except Exception:  # noqa: BLE001 - reported by instantiate, with the key, when the object is built
        return None
    return cls if isinstance(cls, type) and issubclass(cls, ImageDataModule) else None


def _check_trainer(trainer: Mapping[str, Any]) -> None:
    low, high = trainer.get("min_epochs"), trainer.get("max_epochs")
    if is_int(low) and is_int(high):
        require(low <= high, "trainer.min_epochs", low, f"at most trainer.max_epochs ({high})")
    accelerator = trainer.get("accelerator", "auto")
    if accelerator in ("gpu", "cuda"):  # Lightning's own message here is "No supported gpu backend found!"
        import torch

        require(
            torch.cuda.is_available(),
            "trainer.accelerator",
            accelerator,
            "a device this machine has: no CUDA GPU is visible here (use trainer=cpu)",
        )


def _check_checkpoint_schedule(checkpoint: Mapping[str, Any]) -> None:
    """Lightning accepts only one of the two schedules; say so before it raises a traceback."""
    epochs, steps = checkpoint.get("every_n_epochs") or 0, checkpoint.get("every_n_train_steps") or 0
    require(
        not (epochs and steps),
        "callbacks.model_checkpoint.every_n_train_steps",
        steps,
        f"0 or null while callbacks.model_checkpoint.every_n_epochs={epochs} (set one of the two)",
    )


def _check_resume(ckpt: object) -> None:
    """Existence only; `load_checkpoint` vets the contents before anything else reads the file."""
    if ckpt in (None, "last"):
        return
    problem = file_problem(Path(str(ckpt)).expanduser())
    if problem is not None:
        raise UserError(f"resume={ckpt!r} is invalid: it {problem}; give a checkpoint file (or resume=last)")
