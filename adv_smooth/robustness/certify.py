"""Randomized-smoothing certification: Cohen, Rosenfeld & Kolter (2019)'s CERTIFY, batched, per image.

The smoothed classifier g(x) = argmax_c P(f(x + sigma * eps) = c), eps ~ N(0, I), cannot change its answer inside
the L2 ball of radius R = sigma * Phi^-1(p_A) around x, where p_A is the top class's probability under the noise.
CERTIFY guesses the top class from `n0` noisy copies, then bounds p_A from below with `n` fresh ones (a one-sided
Clopper-Pearson bound at level `alpha`): the radius it returns is, with probability at least 1 - alpha, a lower
bound on the true one; when the bound is below 1/2 it abstains (prediction -1, radius 0). The study's budget is
an SNR, so the radius is also read as one: certified SNR = 20 log10(||x||_2 / R) (+inf when R = 0: certified at
no positive radius); the image is certified at every SNR level at or above it.

`sigma` is absolute (pixel units, images in [0, 1]) or, with `sigma_snr`, per image: sigma * sqrt(D) is the
noise's expected L2 norm, set to ||x|| 10^(-sigma_snr / 20). Each image is then certified for the smoothed
classifier at its own sigma (a fixed-sigma classifier per image; a classifier that re-derived sigma from a
perturbed input would need the input-dependent analysis of Sukenik et al. 2022, which this is not).

Pure torch (no Lightning): the robustness callback calls `certify` on the test batches it already holds, in the
trainer's precision context, with a generator seeded from the run's seed. Noisy copies are not clamped to [0, 1]
(as in the paper: the guarantee is for the Gaussian, not a clipped one). Cost: n0 + n forward passes an image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import beta
from torch import Tensor, nn

from adv_smooth.attacks.gradients import crafting_mode
from adv_smooth.robustness.honesty import level_key
from adv_smooth.utils.errors import UserError, is_int, is_number, require, require_int

ABSTAIN = -1


def clopper_pearson_lower(successes: np.ndarray, trials: int, alpha: float) -> np.ndarray:
    """One-sided (1 - alpha) lower confidence bound on a binomial proportion (exact, Clopper & Pearson 1934).

    Beta(alpha; k, n - k + 1), and 0 for k = 0: the same as statsmodels' `proportion_confint(k, n, 2 * alpha,
    method="beta")[0]` that Cohen et al.'s code calls.
    """
    k = np.asarray(successes, dtype=np.float64)
    lower = beta.ppf(alpha, np.maximum(k, 1.0), trials - k + 1.0)
    return np.where(k > 0, lower, 0.0)


def radius_to_snr_db(norm: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """20 log10(||x|| / R): the SNR of a perturbation of norm R; +inf where R = 0."""
    with np.errstate(divide="ignore"):
        return np.where(radius > 0, 20.0 * np.log10(norm / np.where(radius > 0, radius, 1.0)), math.inf)


@dataclass
class Certificate:
    """Per-image outcome of CERTIFY, on the host: every array is (N,)."""

    prediction: np.ndarray  # int64, the smoothed class, ABSTAIN (-1) when p_A's bound is below 1/2
    p_lower: np.ndarray  # float64, p_A's lower confidence bound (for the class selected with n0 draws)
    radius: np.ndarray  # float64, sigma * Phi^-1(p_lower) in [0, 1] pixel units; 0 when abstaining
    snr_db: np.ndarray  # float64, 20 log10(||x|| / radius); +inf when the radius is 0
    sigma: np.ndarray  # float64, the noise level each image was smoothed with
    count: np.ndarray  # int64, draws (of n) that gave the selected class: any other level's bound follows from it
    broken: np.ndarray | None = None  # int8, PGD on g inside the radius: 1 broke it, 0 held, -1 unchecked; None: off
    # empirical attack on g at each SNR level (`empirical`): level key (snr33) -> int8 as `broken`, at that budget
    empirical: dict[str, np.ndarray] | None = None


class Certifier:
    """CERTIFY at one noise level, batched over the images and over the noise draws.

    Args:
        sigma: the noise's standard deviation in [0, 1] pixel units (null with `sigma_snr`).
        sigma_snr: the noise level as an SNR in dB instead, per image: sigma * sqrt(D) = ||x|| 10^(-snr/20).
        n0: draws that select the top class; n: draws that bound its probability; alpha: the bound's level.
        batch: the most noisy images in one forward pass (the draws of several images share one pass).
        check_steps: > 0 checks every certificate with that many PGD steps on the smoothed classifier inside its
            radius (`robustness/certificate_check.py`), `check_draws` noisy copies a step; 0: off.
        empirical: also attack the smoothed classifier with that PGD (`check_steps`, at least 1) at each SNR level
            of `levels` (the budget radius ||x|| 10^(-s/20)): an upper bound on g's robust accuracy beside the
            certified lower bound, the same classifier on both sides.
        generator: the source of the noise; None until the evaluation seeds one (the global generator otherwise).
    """

    def __init__(
        self,
        sigma: float | None = 0.25,
        sigma_snr: float | None = None,
        n0: int = 100,
        n: int = 1000,
        alpha: float = 0.001,
        batch: int = 1000,
        check_steps: int = 0,
        check_draws: int = 16,
        empirical: bool = False,
        levels: list[float] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if sigma is not None and sigma_snr is not None:
            raise UserError(f"sigma={sigma!r} and sigma_snr={sigma_snr!r} are both set: give one (the other null)")
        if sigma is None and sigma_snr is None:
            raise UserError("sigma=None is invalid: a noise level > 0, or null with `sigma_snr` set (dB)")
        if sigma is not None:
            require(is_number(sigma) and 0 < sigma <= 100, "sigma", sigma, "a noise level in (0, 100]")
        else:
            require(is_number(sigma_snr) and abs(sigma_snr) <= 200, "sigma_snr", sigma_snr, "an SNR in dB")
        require_int("n", n, 1, high=10**8, meaning="estimation draws")
        require(is_int(n0) and 1 <= n0 <= n, "n0", n0, f"an integer in [1, n={n}] (selection draws)")
        require(is_number(alpha) and 0 < alpha < 1, "alpha", alpha, "a level strictly between 0 and 1")
        require_int("batch", batch, 1, high=10**7)
        self.sigma = None if sigma is None else float(sigma)
        self.sigma_snr = None if sigma_snr is None else float(sigma_snr)
        require_int("check_steps", check_steps, 0, high=10**4, meaning="PGD steps of the empirical check; 0: off")
        require_int("check_draws", check_draws, 1, high=10**5)
        self.n0, self.n, self.alpha, self.batch = int(n0), int(n), float(alpha), int(batch)
        self.check_steps, self.check_draws = int(check_steps), int(check_draws)
        require(isinstance(empirical, bool), "empirical", empirical, "true or false")
        ok = levels is None or (isinstance(levels, (list, tuple)) and all(is_number(v) for v in levels))
        require(ok, "levels", levels, "null or a list of SNRs in dB")
        require(not empirical or bool(levels), "levels", levels, "the SNR levels to attack at (empirical)")
        require(not empirical or check_steps > 0, "check_steps", check_steps, "PGD steps >= 1 (empirical)")
        self.empirical, self.levels = empirical, [float(v) for v in levels or []]
        self.generator = generator

    def passes_per_image(self) -> int:
        """Forward passes one image costs: its n0 + n noisy copies, and for each PGD run on g (the check, and one a
        level when `empirical`) `check_steps` input gradients (2 passes each) on `check_draws` copies plus n to
        judge (an upper bound: abstained images are not attacked, nor, at a level, those the check settled)."""
        pgd = 2 * self.check_steps * self.check_draws + self.n
        runs = (1 if self.check_steps else 0) + (len(self.levels) if self.empirical else 0)
        return self.n0 + self.n + runs * pgd

    def describe(self) -> str:
        noise = f"sigma={self.sigma:g}" if self.sigma is not None else f"sigma at {self.sigma_snr:g} dB SNR"
        return f"CERTIFY ({noise}, n0={self.n0}, n={self.n}, alpha={self.alpha:g})"

    def sigmas(self, x: Tensor) -> Tensor:
        """(N,) float64: each image's noise level."""
        if self.sigma is not None:
            return torch.full((len(x),), self.sigma, dtype=torch.float64, device=x.device)
        norm = x.detach().flatten(1).double().norm(dim=1)
        return norm * 10.0 ** (-self.sigma_snr / 20.0) / math.sqrt(x[0].numel())

    @torch.no_grad()
    def counts(self, model: nn.Module, x: Tensor, sigma: Tensor, draws: int) -> Tensor:
        """(N, K) int64: how often `model` gives each class on `draws` noisy copies of each image."""
        per_pass = max(1, self.batch // len(x))
        counts: Tensor | None = None
        scale = sigma.to(x.dtype).view(-1, *([1] * x.dim()))
        done = 0
        while done < draws:
            m = min(per_pass, draws - done)
            noise = torch.randn((len(x), m, *x.shape[1:]), generator=self.generator, device=x.device, dtype=x.dtype)
            logits = model((x.unsqueeze(1) + scale * noise).flatten(0, 1))
            pred = logits.argmax(dim=1).view(len(x), m)
            if counts is None:
                counts = torch.zeros(len(x), logits.shape[1], dtype=torch.int64, device=x.device)
            counts.scatter_add_(1, pred, torch.ones_like(pred))
            done += m
        return counts

    def certify(self, model: nn.Module, x: Tensor, phase: Callable[[str], object] | None = None) -> Certificate:
        """CERTIFY on a batch of images in [0, 1] (eval mode for the duration; modes restored). `phase(text)` hears
        of each phase finished (the class votes, the bound, the check, each level's attack): minutes each on a CPU."""
        phase = phase or (lambda text: None)
        sigma = self.sigmas(x)
        with crafting_mode(model, "eval"):
            top = self.counts(model, x, sigma, self.n0).argmax(dim=1)
            phase(f"class votes (n0={self.n0})")
            hits = self.counts(model, x, sigma, self.n).gather(1, top.unsqueeze(1)).squeeze(1)
            phase(f"probability bound (n={self.n})")
        p_lower = clopper_pearson_lower(hits.cpu().numpy(), self.n, self.alpha)
        sigma_np = sigma.cpu().numpy()
        certified = p_lower >= 0.5
        radius = np.where(certified, sigma_np * _normal_ppf(np.clip(p_lower, 0.5, 1.0)), 0.0)
        norm = x.detach().flatten(1).double().norm(dim=1).cpu().numpy()
        broken, empirical = None, None
        if self.check_steps or self.empirical:
            from adv_smooth.robustness.certificate_check import broken_inside  # it builds on this module

            with crafting_mode(model, "eval"):
                if self.check_steps:
                    broken = broken_inside(self, model, x, top, radius, sigma)
                    phase("check inside the radii")
                if self.empirical:
                    empirical = {}
                    for s in self.levels:
                        attacked = self._attack_at(model, x, top, sigma, certified, norm, radius, broken, s)
                        empirical[level_key(s)] = attacked
                        phase(f"empirical attack at {s:g} dB")
        return Certificate(
            prediction=np.where(certified, top.cpu().numpy(), ABSTAIN).astype(np.int64),
            p_lower=p_lower,
            radius=radius,
            snr_db=radius_to_snr_db(norm, radius),
            sigma=sigma_np,
            count=hits.cpu().numpy().astype(np.int64),
            broken=broken,
            empirical=empirical,
        )

    def _attack_at(self, model, x, top, sigma, certified, norm, radius, broken, snr_db: float) -> np.ndarray:
        """`broken_inside` at the level's radius for each answered image, except those the check already attacked
        in a ball at least as large (their certified radius) without breaking them: they held there, so they hold
        here, and the sandwich's cost falls to the images the levels can still decide (none certified at a weak
        level, few at a strong one). An image the check broke is attacked again at the level."""
        level_radius = np.where(certified, norm * 10 ** (-snr_db / 20), 0.0)
        settled = (broken == 0) & (radius >= level_radius) if broken is not None else np.zeros(len(x), dtype=bool)
        from adv_smooth.robustness.certificate_check import broken_inside  # it builds on this module

        result = broken_inside(self, model, x, top, np.where(settled, 0.0, level_radius), sigma)
        return np.where(settled, 0, result).astype(np.int8)


def _normal_ppf(p: np.ndarray) -> np.ndarray:
    return torch.special.ndtri(torch.as_tensor(p, dtype=torch.float64)).numpy()


def certified_accuracy(
    label: np.ndarray, cert_prediction: np.ndarray, cert_snr_db: np.ndarray, levels: list[float]
) -> dict[float, float]:
    """Per SNR level s, the share of images the smoothed classifier gets right with a certified SNR <= s (its
    certified radius reaches the level's radius ||x|| 10^(-s/20)): a lower bound on the smoothed classifier's
    robust accuracy there, up to each image's Monte-Carlo error alpha."""
    good = cert_prediction == label
    n = max(len(label), 1)
    return {float(s): float(np.sum(good & (cert_snr_db <= s))) / n for s in levels}


def build_certifier(config: object) -> Certifier | None:
    """The certifier of `eval.certify` (a mapping of `Certifier`'s options, or null: none); one-line refusals."""
    if config is None or isinstance(config, Certifier):
        return config
    if not isinstance(config, dict):
        raise UserError(f"certify={config!r} is invalid: null or a mapping of options (see conf/eval/certified.yaml)")
    try:
        return Certifier(**config)
    except TypeError as e:
        option = str(e).rsplit("argument", 1)[-1].strip(" '")
        options = "sigma, sigma_snr, n0, n, alpha, batch, check_steps, check_draws, empirical, levels"
        raise UserError(f"`certify.{option}` is not an option ({options})") from None


def certificate_arrays(cert: Certificate) -> dict[str, np.ndarray]:
    """The per-image arrays `Records.certified` keeps (saved in per_image_test.npz as `certified.<name>`)."""
    checked = {} if cert.broken is None else {"broken": cert.broken}
    checked.update({f"empirical_{k}": v for k, v in (cert.empirical or {}).items()})
    return {
        **checked,
        "prediction": cert.prediction,
        "p_lower": cert.p_lower.astype(np.float64),
        "radius": cert.radius.astype(np.float64),
        "snr_db": cert.snr_db.astype(np.float64),
        "sigma": cert.sigma.astype(np.float64),
        "count": cert.count,
    }


def summarize_certified(
    label: np.ndarray, certified: dict[str, np.ndarray], levels: list[float], certifier: Certifier
) -> dict[str, object]:
    """results.json's `certified` block: the settings, the certified accuracy at each SNR level, the smoothed
    classifier's clean accuracy (its CERTIFY prediction right, no radius asked) that bounds every level's from
    above, the abstention rate and the median certified SNR of the images certified right."""
    prediction, snr = certified["prediction"], certified["snr_db"]
    right = prediction == label
    n = len(label)
    right_snr = snr[right & np.isfinite(snr)]
    return {
        "method": "CERTIFY (Cohen, Rosenfeld & Kolter 2019)",
        "sigma": certifier.sigma,
        "sigma_snr": certifier.sigma_snr,
        "n0": certifier.n0,
        "n": certifier.n,
        "alpha": certifier.alpha,
        "images": n,
        "forward_passes": n * certifier.passes_per_image(),
        "smoothed_clean_acc": float(right.mean()) if n else math.nan,
        "abstain": float((prediction == ABSTAIN).mean()) if n else math.nan,
        "median_certified_snr_db": float(np.median(right_snr)) if right_snr.size else math.nan,
        **_check_summary(certified, certifier),
        **_empirical_summary(label, certified, certifier),
        "acc": {
            level_key(s): v for s, v in certified_accuracy(label, prediction, snr, sorted(levels, reverse=True)).items()
        },
    }


def _check_summary(certified: dict[str, np.ndarray], certifier: Certifier) -> dict[str, object]:
    """The certificate check's tally (`check`), when it ran: broken must be 0 up to the Monte-Carlo error alpha."""
    if "broken" not in certified:
        return {}
    broken = certified["broken"]
    checked = int((broken >= 0).sum())
    return {
        "check": {
            "method": "L2 PGD on the soft smoothed classifier inside each certified radius (Salman et al. 2019)",
            "steps": certifier.check_steps,
            "draws": certifier.check_draws,
            "checked": checked,
            "broken": int((broken == 1).sum()),
            "expected_at_most": checked * certifier.alpha,
        }
    }


def _empirical_summary(label: np.ndarray, certified: dict[str, np.ndarray], certifier: Certifier) -> dict[str, object]:
    """The empirical attack on g (`empirical_acc`, an upper bound per level) and the sandwich's honesty check: an
    image certified right at a level cannot be broken there by any attack, except with probability alpha."""
    keys = [k for k in certified if k.startswith("empirical_snr")]
    if not keys:
        return {}
    right = certified["prediction"] == label
    acc, violations, warnings = {}, {}, []
    for key in keys:
        level = key.removeprefix("empirical_")
        held = right & (certified[key] == 0)
        acc[level] = float(held.mean()) if len(label) else math.nan
        s = float(level.removeprefix("snr"))
        certified_right = right & (certified["snr_db"] <= s)
        violations[level] = int((certified_right & (certified[key] == 1)).sum())
        if violations[level]:
            message = (
                f"certified: at {s:g} dB PGD on the smoothed classifier broke {violations[level]} image(s) certified "
                f"there (expected at most {certified_right.sum() * certifier.alpha:.2g} at alpha={certifier.alpha:g}): "
                "a certificate or the attack's judgement is wrong"
            )
            warnings.append({"check": "certified_broken", "attack": "certified", "message": message})
    return {"empirical_acc": acc, "violations": violations, "honesty": warnings}
