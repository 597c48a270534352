"""`evaluate_model`: the command line's evaluation of any network in one call, from Python (a notebook, a script).

    from adv_smooth import evaluate_model
    records, summary = evaluate_model(net, (x_test, y_test), preset="default")

The attacks, levels, cascade, sanity check and certification (`preset="certified"`) are the `eval` preset's
(conf/eval/*.yaml, read by `app/presets.py`), the engine is the `Evaluator` the Lightning callback runs, and
the seeding is the test stage's: on the same weights, images and batch size, the per-image records equal `python -m
adv_smooth.evaluate`'s. No Hydra config, no Trainer: `net` is any `nn.Module` taking images in [0, 1] (put its
normalization inside it, as `models/external.Normalized` does)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from adv_smooth.app.build import build_attacks
from adv_smooth.app.presets import load_preset
from adv_smooth.robustness.certify import build_certifier
from adv_smooth.robustness.evaluator import Evaluator
from adv_smooth.robustness.records import Records
from adv_smooth.utils.errors import UserError

FROM_PRESET: Literal["preset"] = "preset"  # an option left to the preset (None is a value: "off")


class ModelEvaluation(NamedTuple):
    """What `evaluate_model` returns: the per-image records and their JSON summary (results.json's block)."""

    records: Records
    summary: dict[str, Any]


def evaluate_model(
    model: nn.Module,
    data: tuple[Tensor, Tensor] | Iterable[Sequence[Tensor]],
    preset: str = "default",
    snr_levels: Sequence[float] | None = None,
    *,
    attacks: Mapping[str, Any] | None = None,
    cascade: bool | None = None,
    sanity_snr_db: float | None | Literal["preset"] = FROM_PRESET,
    seed: int = 0,
    batch_size: int = 512,
) -> ModelEvaluation:
    """Robustness of `model` on `data`: every attack of the preset at every SNR level, per image.

    Args:
        model: any network taking images in [0, 1] and returning logits; evaluated on its own device.
        data: `(images, labels)` tensors (cut into `batch_size` batches) or an iterable of `(images, labels, ...)`
            batches, e.g. a DataLoader; images float in [0, 1] or uint8 (divided by 255, as the data modules do).
        preset: an `eval` preset: "default", "report", "strong", "minimal" (conf/eval/<preset>.yaml).
        snr_levels: the SNR budgets in dB; None: the preset's.
        attacks: label -> `Attack` (or `_target_` config) instead of the preset's.
        cascade / sanity_snr_db: None / "preset": the preset's; `sanity_snr_db=None` turns the check off.
        seed: the seed of the attacks' generators (the command line's `seed`).
        batch_size: images per batch when `data` is a pair of tensors (the command line's
            `dataset.eval_batch_size`; random attacks draw per batch, so the records depend on it).
    """
    settings = load_preset(preset)
    certify = settings.get("certify")
    if certify is not None and snr_levels is not None:  # the sandwich's levels follow the evaluation's, as in the YAML
        certify = {**certify, "levels": list(snr_levels)}
    engine = Evaluator(
        build_attacks(attacks if attacks is not None else settings["attacks"]),
        snr_levels if snr_levels is not None else settings["snr_levels"],
        cascade=settings["cascade"] if cascade is None else cascade,
        sanity_snr_db=settings["sanity_snr_db"] if sanity_snr_db == FROM_PRESET else sanity_snr_db,
        seed=seed,
        worst=settings["worst"],
        certifier=build_certifier(certify),
    )
    records = engine.run(model, _batches(data, batch_size, _device_of(model)))
    summary = engine.summarize(records)
    for warning in summary["honesty"]:
        warnings.warn(f"honesty check: {warning['message']}", stacklevel=2)
    return ModelEvaluation(records, summary)


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _batches(
    data: tuple[Tensor, Tensor] | Iterable[Sequence[Tensor]], batch_size: int, device: torch.device
) -> Iterator[tuple[Tensor, Tensor]]:
    """(images in [0, 1], labels) on `device`, batch by batch."""
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        x, y = data
        if len(x) != len(y):
            raise UserError(f"data: {len(x)} images but {len(y)} labels")
        if not (isinstance(batch_size, int) and batch_size > 0):
            raise UserError(f"batch_size={batch_size!r} is invalid: expected a positive integer")
        data = ((x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(y), batch_size))
    for batch in data:
        images, labels = batch[0].to(device), batch[1].to(device)
        yield (images.float().div_(255) if images.dtype == torch.uint8 else images), labels
