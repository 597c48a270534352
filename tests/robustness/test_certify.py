"""CERTIFY checked against closed forms: a linear classifier's smoothed radius is its distance to the hyperplane,
the Clopper-Pearson bound against scipy's exact interval, and certified accuracy against the smoothed
classifier's own clean accuracy estimated independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import beta, binom, binomtest
from torch import Tensor, nn

from adv_smooth.robustness.certify import (
    ABSTAIN,
    Certifier,
    build_certifier,
    certificate_arrays,
    certified_accuracy,
    clopper_pearson_lower,
)
from adv_smooth.robustness.records import Records, merge
from adv_smooth.utils.errors import UserError

D = 64  # 1 x 8 x 8 images, the digits' shape


class Linear(nn.Module):
    """Two classes split by the hyperplane w.x + b = 0 (class 1 on the positive side)."""

    def __init__(self, w: Tensor, b: float) -> None:
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x: Tensor) -> Tensor:
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([-s, s], dim=1)


def _linear_problem(n_images: int, sigma: float, seed: int = 0) -> tuple[Linear, Tensor, np.ndarray]:
    """A linear classifier and images at known distances (0.1 sigma to 2.5 sigma) from its hyperplane.

    Under N(0, sigma^2 I) noise the score is N(w.x + b, sigma^2 ||w||^2): p_A = Phi(dist / sigma), so the smoothed
    classifier's exact radius sigma Phi^-1(p_A) is the distance itself (and g = f: the noise is symmetric).
    """
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(D, generator=g, dtype=torch.float64)
    b = 0.3
    x0 = torch.rand(n_images, D, generator=g, dtype=torch.float64)
    dist = sigma * (0.1 + 2.4 * torch.rand(n_images, generator=g, dtype=torch.float64))
    side = torch.where(torch.rand(n_images, generator=g) < 0.5, -1.0, 1.0).double()
    unit = w / w.norm()
    x = x0 + (side * dist - (x0 @ w + b) / w.norm()).unsqueeze(1) * unit
    return Linear(w, b), x.view(n_images, 1, 8, 8), dist.numpy()


def test_linear_classifier_radius_is_bracketed_at_level_alpha() -> None:
    sigma, alpha, n, images = 0.5, 0.001, 1000, 120
    model, x, true_radius = _linear_problem(images, sigma)
    cert = Certifier(sigma=sigma, n0=100, n=n, alpha=alpha, generator=torch.Generator().manual_seed(1)).certify(
        model, x
    )
    side = (x.flatten(1) @ model.w + model.b > 0).long().numpy()
    answered = cert.prediction != ABSTAIN
    assert (cert.prediction[answered] == side[answered]).all(), "the smoothed linear classifier is the classifier"
    k = cert.count
    p_upper = np.where(k < n, beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1)), 1.0)
    upper = sigma * torch.special.ndtri(torch.as_tensor(p_upper)).numpy()
    lower = cert.radius
    outside = (true_radius < lower) | (true_radius > upper)
    # each image's two-sided bracket misses with probability at most 2 alpha: allow the 99.9 % quantile of misses
    assert outside.sum() <= binom.ppf(0.999, images, 2 * alpha), (true_radius[outside], lower[outside])
    assert (lower <= true_radius).mean() >= 0.99
    far = true_radius > sigma  # where p_A is well inside (0.5, 1), the bound is tight, not merely valid
    assert np.median((true_radius[far] - lower[far]) / true_radius[far]) < 0.2
    assert answered[true_radius > 0.5 * sigma].all(), "p_A > 0.69 with 1000 draws is always certified"


def test_certified_snr_is_the_radius_read_as_an_snr() -> None:
    model, x, _ = _linear_problem(20, 0.5)
    cert = Certifier(sigma=0.5, n0=50, n=500, generator=torch.Generator().manual_seed(2)).certify(model, x)
    norm = x.flatten(1).norm(dim=1).numpy()
    ok = cert.radius > 0
    assert np.allclose(cert.snr_db[ok], 20 * np.log10(norm[ok] / cert.radius[ok]))
    assert np.isinf(cert.snr_db[~ok]).all() and (cert.radius[cert.prediction == ABSTAIN] == 0).all()


def test_sigma_as_an_snr_sets_each_images_own_level() -> None:
    model, x, _ = _linear_problem(30, 0.5)
    snr = 20.0
    cert = Certifier(sigma=None, sigma_snr=snr, n0=50, n=500, generator=torch.Generator().manual_seed(3)).certify(
        model, x
    )
    norm = x.flatten(1).norm(dim=1).numpy()
    assert np.allclose(cert.sigma, norm * 10 ** (-snr / 20) / math.sqrt(D))
    ok = cert.radius > 0
    phi_inv = torch.special.ndtri(torch.as_tensor(cert.p_lower[ok])).numpy()
    assert np.allclose(cert.snr_db[ok], snr + 20 * np.log10(math.sqrt(D) / phi_inv))


def test_noise_draws_have_the_requested_level() -> None:
    """The draws themselves: a model that reports whether a coordinate's noise exceeds sigma sees P(|z| > 1)."""
    sigma = 0.3

    class Tail(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            big = (x.flatten(1)[:, 0] - 0.5).abs() > sigma
            return torch.stack([(~big).float(), big.float()], dim=1)

    x = torch.full((4, 1, 8, 8), 0.5)
    counts = Certifier(sigma=sigma, n=4000, batch=512, generator=torch.Generator().manual_seed(4)).counts(
        Tail(), x, torch.full((4,), sigma, dtype=torch.float64), 4000
    )
    assert counts.sum(dim=1).tolist() == [4000] * 4, "every draw counted once across the passes"
    share = counts[:, 1].double() / 4000
    assert torch.allclose(share, torch.full((4,), 0.3173, dtype=torch.float64), atol=0.03)


def test_clopper_pearson_matches_scipys_exact_interval() -> None:
    n, alpha = 1000, 0.001
    for k in (0, 1, 37, 500, 990, 1000):
        exact = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
        assert clopper_pearson_lower(np.array([k]), n, alpha)[0] == pytest.approx(exact, abs=1e-12)


def test_a_coin_flip_classifier_abstains() -> None:
    class Coin(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return torch.stack([x.flatten(1)[:, 0], -x.flatten(1)[:, 0]], dim=1)  # the noise's sign decides

    cert = Certifier(sigma=1.0, n0=50, n=1000, generator=torch.Generator().manual_seed(5)).certify(
        Coin(), torch.zeros(8, 1, 8, 8)
    )
    assert (cert.prediction == ABSTAIN).all() and (cert.radius == 0).all() and (cert.p_lower < 0.5).all()


def test_certified_accuracy_never_exceeds_the_smoothed_classifiers_clean_accuracy() -> None:
    """The smoothed classifier's clean accuracy is estimated independently (5,000 fresh draws an image)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, 10))
    x = torch.rand(45, 1, 8, 8)
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    y[::3] = torch.randint(0, 10, (15,))  # some labels the network gets wrong
    sigma = 0.25
    certifier = Certifier(sigma=sigma, n0=100, n=1000, alpha=0.001, generator=torch.Generator().manual_seed(6))
    cert = certifier.certify(net, x)
    reference = Certifier(sigma=sigma, n=5000, batch=50000, generator=torch.Generator().manual_seed(7))
    smoothed = reference.counts(net, x, reference.sigmas(x), 5000).argmax(dim=1).numpy()
    label = y.numpy()
    right = (cert.prediction == label) & (cert.prediction != ABSTAIN)
    assert right.any() and (~right).any()
    assert (smoothed[right] == label[right]).all(), "a certified-right image is one the smoothed classifier gets right"
    clean_acc = float((smoothed == label).mean())
    levels = [60.0, 40.0, 30.0, 20.0, 10.0, 0.0]
    curve = certified_accuracy(label, cert.prediction, cert.snr_db, levels)
    assert all(acc <= clean_acc for acc in curve.values()), (curve, clean_acc)
    assert list(curve.values()) == sorted(curve.values(), reverse=True), "a larger radius certifies fewer images"


def test_same_seed_same_certificate() -> None:
    model, x, _ = _linear_problem(10, 0.5)

    def run(seed: int) -> np.ndarray:
        return Certifier(sigma=0.5, n0=20, n=200, generator=torch.Generator().manual_seed(seed)).certify(model, x).count

    assert np.array_equal(run(8), run(8)) and not np.array_equal(run(8), run(9))


def test_records_keep_certificates_through_a_file_and_a_merge(tmp_path) -> None:
    model, x, _ = _linear_problem(6, 0.5)
    cert = Certifier(sigma=0.5, n0=20, n=200, generator=torch.Generator().manual_seed(10)).certify(model, x)
    arrays = certificate_arrays(cert)

    def part(rows: slice) -> Records:
        index = np.arange(6)[rows]
        records = Records(index, np.zeros(len(index), dtype=np.int64), np.zeros(len(index), dtype=np.int64))
        records.certified = {k: v[rows] for k, v in arrays.items()}
        return records

    merged = merge([part(slice(3, 6)), part(slice(0, 3))])
    loaded = Records.load(merged.save(tmp_path / "per_image_test.npz"))
    assert set(loaded.certified) == set(arrays)
    for key, values in arrays.items():
        assert np.array_equal(loaded.certified[key], values), key


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sigma": 0}, "sigma=0 is invalid"),
        ({"sigma": -0.5}, "sigma=-0.5 is invalid"),
        ({"n0": 2000, "n": 1000}, "n0=2000 is invalid: an integer in [1, n=1000]"),
        ({"n": 0}, "n=0 is invalid"),
        ({"alpha": 0}, "alpha=0 is invalid: a level strictly between 0 and 1"),
        ({"alpha": 1.5}, "alpha=1.5 is invalid"),
        ({"sigma": None}, "sigma=None is invalid"),
        ({"sigma": 0.5, "sigma_snr": 10}, "are both set"),
        ({"steps": 3}, "`certify.steps` is not an option"),
    ],
)
def test_bad_options_are_one_line_naming_the_key(options: dict, message: str) -> None:
    with pytest.raises(UserError) as error:
        build_certifier(options)
    assert message in str(error.value) and "\n" not in str(error.value)
