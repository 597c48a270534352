"""Per-image robustness records: what every evaluation keeps, so any curve can be recomputed.

One record per evaluated split holds, for each image, its label, its clean prediction and, per attack
and level, whether the attacked image is still classified correctly (`adv_correct`: 1 correct, 0
wrong, -1 not attacked because a cascade had already broken it or it was wrong clean: read a cascade's
rows through `Records.correct`, which makes them cumulative over the cascade's order), the SNR the
attack's output measures, for minimum-norm attacks the image's minimal adversarial SNR, and for iterative
attacks whether they were still closing in on the boundary at the end (`improving`). Curves,
the `worst` cascade, the honesty checks and the report's paired tests are all computed from it.

Saved as a compressed `.npz` (numpy arrays only, no pickle: `np.load(path)` is safe on a file received
from someone else). Fixed-budget attacks have one level, stored as NaN.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adv_smooth.utils.io import write_bytes_atomic

FIXED = None  # the level of a fixed-budget attack


@dataclass
class AttackRecords:
    """One attack over one split: levels weak to strong, per-image outcomes shaped (levels, N)."""

    levels: list[float | None]
    adv_correct: np.ndarray  # int8 (L, N)
    measured_snr_db: np.ndarray  # float32 (L, N), NaN where not attacked
    min_snr_db: np.ndarray | None = None  # float32 (N,), minimum-norm attacks only
    # int8 (L, N), iterative attacks: 1 where the attack was still closing in on the boundary at its end
    # (`attacks.base.needs_more_steps`), 0 where not, -1 where not attacked (the honesty checks' convergence rule)
    improving: np.ndarray | None = None

    def robust(self) -> np.ndarray:
        """(L, N) bool: not broken by this attack (an image it did not attack counts as not broken)."""
        return self.adv_correct != 0


@dataclass
class Records:
    """A split's per-image records (`index`: each image's position in the split)."""

    index: np.ndarray
    label: np.ndarray
    clean_pred: np.ndarray
    attacks: dict[str, AttackRecords] = field(default_factory=dict)
    zero_grad: np.ndarray | None = None  # bool (N,): the clean input gradient is exactly zero
    sanity_level: float | None = None  # a very low SNR at which accuracy should approach 0
    sanity_correct: dict[str, np.ndarray] = field(default_factory=dict)  # attack -> bool (N,) at that level
    cascade: bool = False  # each attack ran only on the images the earlier ones left robust
    # `eval.test_subset`: the whole split's size when only `index` was evaluated (None: the whole split), and the
    # seed of a stratified sample (None with a split size: the split's first images)
    split_size: int | None = None
    subset_seed: int | None = None
    # randomized-smoothing certification (`robustness/certify.py`), per image: prediction (-1 abstains), p_lower,
    # radius, snr_db, sigma, count (draws of n for the selected class); empty when nothing was certified
    certified: dict[str, np.ndarray] = field(default_factory=dict)
    # bool (N,): two identical passes gave other logits (a random model); the attacks then averaged `eot_samples`
    # passes per evaluation (EOT; 1: they did not)
    randomized: np.ndarray | None = None
    eot_samples: int = 1

    @property
    def n(self) -> int:
        return int(self.label.shape[0])

    @property
    def clean(self) -> np.ndarray:
        return self.clean_pred == self.label

    def correct(self, attack: str) -> dict[float | None, np.ndarray]:
        """Per level, (N,) bool: correct under `attack`; for a cascade, correct clean and not broken by it or
        by any attack before it at that level. The per-image form of `accuracy`, which the report's paired
        tests compare image by image.

        A cascade stores -1 where an attack did not run (an earlier one had broken the image, or it was wrong
        clean), so its own outcome row cannot be read alone: that would count the images broken earlier as
        robust and every later row would read as clean accuracy. The running AND over the cascade's order makes
        each row "robust after this attack and every earlier one", never above an earlier row.
        """
        rec = self.attacks[attack]
        if not self.cascade:
            return {lv: rec.adv_correct[i] == 1 for i, lv in enumerate(rec.levels)}
        out = {}
        for i, lv in enumerate(rec.levels):
            robust = self.clean.copy()
            for name in self.cascade_before(attack):
                earlier = self.attacks[name]
                if lv in earlier.levels:
                    robust &= earlier.adv_correct[earlier.levels.index(lv)] != 0
            out[lv] = robust & (rec.adv_correct[i] != 0)
        return out

    def cascade_before(self, attack: str) -> list[str]:
        """The attacks that ran before `attack` in a cascade (the records' order is the run order); [] otherwise."""
        names = list(self.attacks)
        return names[: names.index(attack)] if self.cascade else []

    def accuracy(self, attack: str) -> dict[float | None, float]:
        """Accuracy under `attack` per level: correct clean and not broken (for a cascade: by it or an earlier one)."""
        return {lv: _share(mask) for lv, mask in self.correct(attack).items()}

    def worst_correct(self) -> dict[float | None, np.ndarray]:
        """Per level, (N,) bool: correct clean and surviving every attack there (SNR levels weak to strong; the
        fixed-budget attacks, if any, together under None)."""
        levels = sorted({lv for rec in self.attacks.values() for lv in rec.levels if lv is not None}, reverse=True)
        if any(FIXED in rec.levels for rec in self.attacks.values()):
            levels.append(FIXED)
        out: dict[float | None, np.ndarray] = {}
        for lv in levels:
            robust = self.clean.copy()
            for rec in self.attacks.values():
                if lv in rec.levels:
                    robust &= rec.robust()[rec.levels.index(lv)]
            out[lv] = robust
        return out

    def worst(self) -> dict[float | None, float]:
        """Per level, the share of images correct clean that survive every attack there (see `worst_correct`)."""
        return {lv: _share(mask) for lv, mask in self.worst_correct().items()}

    def minimal_curve(self, attack: str, levels: list[float]) -> dict[float, float]:
        """Accuracy at any SNR s from the minimal SNRs: correct clean and minimal SNR below s."""
        min_snr = self.attacks[attack].min_snr_db
        return {float(s): _share(self.clean & (min_snr < s)) for s in levels}

    def median_min_snr(self, attack: str) -> float:
        """Median minimal adversarial SNR over the images correct clean (higher: less robust)."""
        values = self.attacks[attack].min_snr_db[self.clean]
        return float(np.median(values)) if values.size else math.nan

    # -- files ---------------------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "index": self.index,
            "label": self.label,
            "clean_pred": self.clean_pred,
            "attacks": np.array(list(self.attacks), dtype=np.str_),
            "cascade": np.array(self.cascade),
        }
        for name, rec in self.attacks.items():
            out[f"{name}.levels"] = np.array([math.nan if lv is None else lv for lv in rec.levels], dtype=np.float64)
            out[f"{name}.adv_correct"] = rec.adv_correct.astype(np.int8)
            out[f"{name}.measured_snr_db"] = rec.measured_snr_db.astype(np.float32)
            if rec.min_snr_db is not None:
                out[f"{name}.min_snr_db"] = rec.min_snr_db.astype(np.float32)
            if rec.improving is not None:
                out[f"{name}.improving"] = rec.improving.astype(np.int8)
        if self.zero_grad is not None:
            out["zero_grad"] = self.zero_grad
        if self.split_size is not None:
            out["split_size"] = np.array(self.split_size)
        if self.subset_seed is not None:
            out["subset_seed"] = np.array(self.subset_seed)
        if self.sanity_level is not None:
            out["sanity_level"] = np.array(self.sanity_level)
            for name, correct in self.sanity_correct.items():
                out[f"{name}.sanity_correct"] = correct
        for key, values in self.certified.items():
            out[f"certified.{key}"] = values
        if self.randomized is not None:
            out["randomized"] = self.randomized
            out["eot_samples"] = np.array(self.eot_samples)
        return out

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename): a half-written file never carries the final name."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **self.arrays())
        return write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> Records:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        records = cls(
            index=arrays["index"],
            label=arrays["label"],
            clean_pred=arrays["clean_pred"],
            zero_grad=arrays.get("zero_grad"),
            cascade=bool(arrays.get("cascade", False)),
            split_size=int(arrays["split_size"]) if "split_size" in arrays else None,
            subset_seed=int(arrays["subset_seed"]) if "subset_seed" in arrays else None,
            randomized=arrays.get("randomized"),
            eot_samples=int(arrays.get("eot_samples", 1)),
        )
        if "sanity_level" in arrays:
            records.sanity_level = float(arrays["sanity_level"])
        for name in arrays["attacks"].tolist():
            levels = [None if math.isnan(lv) else float(lv) for lv in arrays[f"{name}.levels"].tolist()]
            records.attacks[name] = AttackRecords(
                levels,
                arrays[f"{name}.adv_correct"],
                arrays[f"{name}.measured_snr_db"],
                arrays.get(f"{name}.min_snr_db"),
                arrays.get(f"{name}.improving"),
            )
            if f"{name}.sanity_correct" in arrays:
                records.sanity_correct[name] = arrays[f"{name}.sanity_correct"]
        records.certified = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("certified.")}
        return records


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else math.nan


def merge(parts: list[Records]) -> Records:
    """One split's records from its shards (one per process), in index order, each image once.

    The shards of an unpadded sampler are disjoint; a padding one (Lightning's `DistributedSampler`) repeats a
    few images, which count once here. Shards with no image (a process that evaluated none) carry nothing.
    """
    filled = [p for p in parts if p.n] or parts[:1]
    index = np.concatenate([p.index for p in filled])
    _, keep = np.unique(index, return_index=True)  # sorted by index, first occurrence of each

    def take(get) -> np.ndarray:
        return np.concatenate([get(p) for p in filled], axis=-1)[..., keep]

    first = filled[0]
    merged = Records(
        index=index[keep],
        label=take(lambda p: p.label),
        clean_pred=take(lambda p: p.clean_pred),
        zero_grad=None if first.zero_grad is None else take(lambda p: p.zero_grad),
        sanity_level=first.sanity_level,
        cascade=first.cascade,
        split_size=first.split_size,
        subset_seed=first.subset_seed,
        randomized=None if first.randomized is None else take(lambda p: p.randomized),
        eot_samples=max(p.eot_samples for p in filled),
    )
    for name, rec in first.attacks.items():
        merged.attacks[name] = AttackRecords(
            levels=rec.levels,
            adv_correct=take(lambda p, n=name: p.attacks[n].adv_correct),
            measured_snr_db=take(lambda p, n=name: p.attacks[n].measured_snr_db),
            min_snr_db=None if rec.min_snr_db is None else take(lambda p, n=name: p.attacks[n].min_snr_db),
            improving=None if rec.improving is None else take(lambda p, n=name: p.attacks[n].improving),
        )
    for name in first.sanity_correct:
        merged.sanity_correct[name] = take(lambda p, n=name: p.sanity_correct[n])
    for key in first.certified:
        merged.certified[key] = take(lambda p, k=key: p.certified[k])
    return merged
