"""The metric arithmetic against independent implementations: numpy/scipy for FID,
torchmetrics for KID and IS, a brute-force sklearn reference for precision/recall."""

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.neighbors import NearestNeighbors
from torch import nn
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from ganforge.metrics import scores
from ganforge.metrics.scores import (
    Gaussian,
    frechet_distance,
    inception_score,
    kernel_distance,
    precision_recall,
    squared_knn_radii,
)


@pytest.mark.parametrize("n_real, n_fake, dim", [(40, 30, 12), (5, 7, 192), (7, 5, 192)])
def test_fid_matches_the_formula(n_real, n_fake, dim):
    """||mu1-mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) with numpy/scipy.

    40/30 samples of 12-d features: full-rank covariances, scipy's sqrtm. 5/7 (and 7/5)
    samples of 192-d features: rank-deficient ones, the small-evaluation case (the real
    set's covariance is factored, or the fake's when that set is smaller), where scipy's
    sqrtm of a singular product is unreliable, so the reference trace is the equivalent
    sum of singular values of Xr_c Xf_c^T / sqrt((n_r - 1)(n_f - 1)).
    """
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(n_real, dim, generator=generator, dtype=torch.float64)
    fake = 0.7 * torch.rand(n_fake, dim, generator=generator, dtype=torch.float64) + 0.2
    x, y = real.numpy(), fake.numpy()
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    if min(n_real, n_fake) > dim:
        trace_sqrt = np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    else:
        cross = (x - x.mean(0)) @ (y - y.mean(0)).T / np.sqrt((n_real - 1) * (n_fake - 1))
        trace_sqrt = np.linalg.svd(cross, compute_uv=False).sum()
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert float(frechet_distance(Gaussian.of(real), Gaussian.of(fake))) == pytest.approx(expected, rel=1e-9)
    # A kept reference set's factor is used whichever set is smaller: the same value.
    assert float(frechet_distance(Gaussian.of(real).factored(), Gaussian.of(fake))) == pytest.approx(expected, rel=1e-9)
    # Accumulated in blocks of rows, as for large sets: the same Gaussian.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scores, "_BLOCK_ENTRIES", 3 * dim)
        blocked = Gaussian.of(real)
    torch.testing.assert_close(blocked.cov, torch.from_numpy(s1))


class PassThrough(nn.Module):
    """torchmetrics' 'feature extractor' for features computed already."""

    def forward(self, x):
        return x


def torchmetrics_kid(real, fake, subsets, subset_size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kid = KernelInceptionDistance(feature=PassThrough(), subsets=subsets, subset_size=subset_size)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    torch.manual_seed(0)  # kernel_distance(seed=0) draws the same permutations from its own generator
    return kid.compute()


@pytest.mark.parametrize("gram", [True, False])
def test_kid_is_torchmetrics_kid(gram, monkeypatch):
    generator = torch.Generator().manual_seed(1)
    real = torch.randn(60, 16, generator=generator, dtype=torch.float64)
    fake = 0.8 * torch.randn(50, 16, generator=generator, dtype=torch.float64) + 0.3
    if not gram:  # the path for large sets: each subset's kernels on their own
        monkeypatch.setattr(scores, "_BLOCK_ENTRIES", 100)
    mean, std = kernel_distance(real, fake, subsets=15, subset_size=20, seed=0)
    expected_mean, expected_std = torchmetrics_kid(real, fake, subsets=15, subset_size=20)
    assert float(mean) == pytest.approx(float(expected_mean), rel=1e-10)
    assert float(std) == pytest.approx(float(expected_std), rel=1e-10)
    assert float(std) > 0
    # torchmetrics refuses a subset larger than a set; here it is capped at the smaller set.
    capped = kernel_distance(real, fake, subsets=5, subset_size=1000, seed=0)
    assert [float(v) for v in capped] == pytest.approx(
        [float(v) for v in torchmetrics_kid(real, fake, subsets=5, subset_size=50)], rel=1e-10)
    # float32 features (Gram products in float32, the rest in float64): the same to float32 precision.
    mean32, _ = kernel_distance(real.float(), fake.float(), subsets=15, subset_size=20, seed=0)
    assert float(mean32) == pytest.approx(float(expected_mean), rel=1e-4)


def test_kid_of_equal_sized_sets_has_one_subset():
    real, fake = torch.randn(30, 4, dtype=torch.float64), torch.randn(30, 4, dtype=torch.float64) + 1
    mean, std = kernel_distance(real, fake, subsets=100, subset_size=1000)
    assert float(std) == 0 and float(mean) > 0
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(real[:1], fake)


def test_inception_score_is_torchmetrics_inception_score():
    logits = 3 * torch.randn(200, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = InceptionScore(feature=PassThrough(), splits=10)
    reference.update(logits)
    torch.manual_seed(0)  # inception_score(seed=0) shuffles with the same permutation
    expected_mean, expected_std = reference.compute()
    mean, std = inception_score(logits, splits=10, seed=0)
    assert float(mean) == pytest.approx(float(expected_mean), rel=1e-10)
    # torchmetrics' std has ddof 1, Salimans et al.'s and torch-fidelity's ddof 0.
    assert float(std) == pytest.approx(float(expected_std) * math.sqrt(9 / 10), rel=1e-10)
    assert torch.equal(torch.stack(inception_score(logits, splits=10, seed=0)), torch.stack((mean, std)))


def test_inception_score_bounds():
    """1 when every prediction is the same, K for confident predictions spread over K classes."""
    k = 7
    assert float(inception_score(torch.randn(1, k).expand(70, k), splits=10)[0]) == pytest.approx(1)
    confident = 50 * torch.eye(k, dtype=torch.float64).repeat(20, 1)  # 140 samples, 20 per class
    mean, std = inception_score(confident, splits=1)
    assert float(mean) == pytest.approx(k, rel=1e-9) and float(std) == 0


def brute_force_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkaanniemi et al.'s definition, spelled out: radii from sklearn's k+1 nearest
    neighbours (the first is the sample itself), membership from every pairwise distance."""
    def radii(x):
        distances, _ = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x)
        return distances[:, k]

    def inside(points, centres, radius):
        distances = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=2)
        return (distances <= radius[None, :]).any(axis=1)

    return inside(fake, real, radii(real)).mean(), inside(real, fake, radii(fake)).mean()


@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_match_a_brute_force_reference(k, monkeypatch):
    rng = np.random.default_rng(3)
    # Partly overlapping sets: the fake set is shifted and narrower, so both fractions are
    # strictly between 0 and 1.
    real = rng.normal(size=(300, 8))
    fake = 0.6 * rng.normal(size=(250, 8)) + 0.8
    expected = brute_force_precision_recall(real, fake, k)
    assert 0.05 < expected[0] < 0.95 and 0.05 < expected[1] < 0.95
    got = precision_recall(torch.from_numpy(real).float(), torch.from_numpy(fake).float(), k)
    assert tuple(float(v) for v in got) == pytest.approx(expected, abs=1e-12)
    # Radii given (a cached reference set), and blocks of a few rows: the same.
    monkeypatch.setattr(scores, "_BLOCK_ENTRIES", 1000)
    radii = squared_knn_radii(torch.from_numpy(real), k)
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k, real_squared_radii=radii)
    assert tuple(float(v) for v in got) == pytest.approx(expected, abs=1e-12)


def test_precision_recall_needs_more_samples_than_neighbours():
    with pytest.raises(ValueError, match="more than 3 samples"):
        squared_knn_radii(torch.randn(3, 4), k=3)
