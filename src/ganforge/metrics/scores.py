"""The arithmetic of the sample-quality metrics, on features and logits already extracted.

* FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
  Local Nash Equilibrium"): a Gaussian fitted to each feature set,
  ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))``.
* KID (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased squared MMD under
  the cubic kernel ``k(x, y) = (x.y / D + 1)^3``, mean and std over random subsets.
* IS (Salimans et al. 2016, "Improved Techniques for Training GANs"):
  ``exp(E_x KL(p(y|x) || p(y)))`` on the fake set's class logits, mean and std over splits.
* Precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric
  for Assessing Generative Models"): each sample's radius is the distance to its k-th
  nearest neighbour in its own set; precision is the fraction of fake samples inside the
  ball of at least one real sample, recall the fraction of real samples inside the ball
  of at least one fake sample.

Everything is computed in float64 (the KID Gram products in the features' dtype, as
torchmetrics does). Random subsets and splits come from a `torch.Generator` seeded with
``seed``: the same inputs give the same numbers, and the global RNG is left alone.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "Gaussian",
    "frechet_distance",
    "inception_score",
    "kernel_distance",
    "precision_recall",
    "squared_knn_radii",
]

_BLOCK_ENTRIES = 2**24  # entries of one block of a pairwise (float64) matrix: 128 MB


class Gaussian(NamedTuple):
    """A feature set's mean (D,), covariance (D, D) (float64, unbiased) and sample count.

    factor: L (D, r) with L L^T = cov, when computed (`factored`): a reference set's
    Gaussian keeps it, so that FID against each new fake set skips that eigenproblem.
    """

    mean: Tensor
    cov: Tensor
    count: int
    factor: Tensor | None = None

    def factored(self) -> Gaussian:
        """This Gaussian with its covariance's factor computed."""
        return self if self.factor is not None else self._replace(factor=_psd_factor(self.cov, self.count - 1))

    @classmethod
    def of(cls, features: Tensor) -> Gaussian:
        """The Gaussian fitted to (N, D) features, N >= 2, accumulated in float64 blocks."""
        n = features.shape[0]
        if n < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {n}")
        rows = max(1, _BLOCK_ENTRIES // features.shape[1])
        mean = sum(block.double().sum(0) for block in features.split(rows)) / n
        cov = torch.zeros(features.shape[1], features.shape[1], dtype=torch.float64, device=features.device)
        for block in features.split(rows):
            centred = block.double() - mean
            cov += centred.T @ centred
        cov /= n - 1
        return cls(mean, (cov + cov.T) / 2, n)


def _psd_factor(sigma: Tensor, max_rank: int) -> Tensor:
    """L, (D, r), with L L^T = sigma for a symmetric PSD (D, D) sigma of rank <= max_rank.

    Directions with eigenvalues under the usual rank tolerance (D * eps * the largest)
    are left out. A covariance of n samples has rank <= n - 1, so when that is well below
    D (an evaluation on fewer images than D / 2), the range of sigma is found exactly from
    sigma @ (D, max_rank + 8) random probes and a QR (Halko et al. 2011's range finder,
    exact here because the rank bound is exact), and only a small eigenproblem is solved:
    milliseconds instead of seconds for D = 2048 on a CPU. The probes come from a fixed
    seed, so the result is reproducible.
    """
    d = sigma.shape[0]
    if max_rank + 8 <= d // 2:
        generator = torch.Generator(device=sigma.device).manual_seed(0)
        probes = torch.randn(d, max_rank + 8, generator=generator, dtype=sigma.dtype, device=sigma.device)
        basis, _ = torch.linalg.qr(sigma @ probes)  # (D, k) orthonormal, spans sigma's range
        small = basis.T @ sigma @ basis
        eigenvalues, small_vectors = torch.linalg.eigh((small + small.T) / 2)
        eigenvectors = basis @ small_vectors
    else:
        eigenvalues, eigenvectors = torch.linalg.eigh(sigma)
    tolerance = eigenvalues.max().clamp(min=0) * d * torch.finfo(sigma.dtype).eps
    keep = eigenvalues > tolerance
    return eigenvectors[:, keep] * eigenvalues[keep].sqrt()


def _trace_sqrt_product(factor1: Tensor, sigma2: Tensor) -> Tensor:
    """Tr((S1 S2)^(1/2)) for symmetric PSD (D, D) S1 = L L^T, given L = factor1 (D, r), and S2.

    S1 S2 is not symmetric, but it has the nonzero eigenvalues of the symmetric PSD
    (r, r) L^T S2 L, so symmetric eigenproblems replace the general
    ``eigvals(S1 @ S2)`` (or scipy's sqrtm) of a (D, D) matrix: faster (D = 2048 took tens
    of seconds on a 2-core CPU with eigvals) and free of the complex round-off a general
    solver returns.
    """
    inner = factor1.T @ sigma2 @ factor1
    return torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()


def frechet_distance(real: Gaussian, fake: Gaussian) -> Tensor:
    """FID between two fitted Gaussians: a float64 scalar tensor (>= 0 up to round-off).

    Tr sqrt(S_r S_f) = Tr sqrt(S_f S_r): the real covariance's factor is used when it is
    there (a kept reference set), else the covariance of the smaller set is factored.
    """
    if real.factor is not None:
        factored, other = real, fake
    else:
        factored, other = ((fake, real) if fake.count < real.count else (real, fake))
        factored = factored.factored()
    cross = _trace_sqrt_product(factored.factor, other.cov)
    return (real.mean - fake.mean).square().sum() + real.cov.trace() + fake.cov.trace() - 2 * cross


def _unbiased_mmd(k_xx: Tensor, k_yy: Tensor, k_xy: Tensor) -> Tensor:
    """Unbiased squared MMD from (m, m) kernel matrices: the within terms skip k(x, x)."""
    m = k_xx.shape[0]
    within = k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()
    return within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


def kernel_distance(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[Tensor, Tensor]:
    """KID of (N_r, D) real against (N_f, D) fake features: (mean, std) over subsets, float64.

    Each of ``subsets`` draws takes ``m = min(subset_size, N_r, N_f)`` samples of each set
    without replacement (``subset_size`` is an upper bound, so a small evaluation still
    gets a number; the estimator is unbiased at any m, only noisier), in torchmetrics'
    order: a permutation of the real set, then one of the fake set, per subset. When m is
    both set sizes every draw is the same, so there is one (std 0). The std is over
    subsets with ddof 0, as torchmetrics and torch-fidelity report it.

    When the three kernel matrices fit in 2^24 entries, they are computed once, and the
    sum of a subset's block is ``w^T K w`` with w the subset's 0/1 indicator (the draws
    are without replacement), for all subsets in one product (for 1797 samples of 2048-d
    features: about 30 times less arithmetic than kernels per subset); otherwise each
    subset's kernels are computed on their own.
    """
    n_real, n_fake, d = real.shape[0], fake.shape[0], real.shape[1]
    m = min(subset_size, n_real, n_fake)
    if m < 2:
        raise ValueError(f"KID needs at least 2 real and 2 fake samples, got {n_real} and {n_fake}")
    if m == n_real == n_fake:
        subsets = 1
    generator = torch.Generator().manual_seed(seed)
    draws = []
    for _ in range(subsets):
        r = torch.randperm(n_real, generator=generator)[:m].to(real.device)
        f = torch.randperm(n_fake, generator=generator)[:m].to(fake.device)
        draws.append((r, f))

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        return (a @ b.T).double().div(d).add(1).pow(3)

    if n_real * n_real + n_fake * n_fake + n_real * n_fake <= _BLOCK_ENTRIES:
        k_rr, k_ff, k_rf = kernel(real, real), kernel(fake, fake), kernel(real, fake)
        w_r = torch.zeros(len(draws), n_real, dtype=torch.float64, device=real.device)
        w_f = torch.zeros(len(draws), n_fake, dtype=torch.float64, device=fake.device)
        for i, (r, f) in enumerate(draws):
            w_r[i, r], w_f[i, f] = 1, 1
        within = ((w_r @ k_rr) * w_r).sum(1) - w_r @ k_rr.diagonal() + ((w_f @ k_ff) * w_f).sum(1) - w_f @ k_ff.diagonal()
        scores = within / (m * (m - 1)) - 2 * ((w_r @ k_rf) * w_f).sum(1) / (m * m)
    else:
        scores = torch.stack([_unbiased_mmd(kernel(real[r], real[r]), kernel(fake[f], fake[f]), kernel(real[r], fake[f]))
                              for r, f in draws])
    return scores.mean(), scores.std(unbiased=False)


def inception_score(logits: Tensor, splits: int = 10, seed: int = 0) -> tuple[Tensor, Tensor]:
    """IS of (N, K) class logits: (mean, std) over ``splits`` parts, float64.

    The samples are shuffled by a permutation drawn from ``seed`` (as torch-fidelity and
    torchmetrics do), cut into ``min(splits, N)`` consecutive parts of sizes N // splits
    or one more (Salimans et al.'s slicing), and each part scores
    ``exp(mean_x KL(p(y|x) || mean_x p(y|x)))`` with p = softmax(logits). The std has
    ddof 0, as in Salimans et al.'s code and torch-fidelity (torchmetrics uses ddof 1).
    The score lies in [1, K]: K when every sample is confidently one class and the classes
    are used equally.
    """
    n = logits.shape[0]
    if n < 1:
        raise ValueError("the Inception Score needs at least one sample")
    splits = min(splits, n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(logits.device)
    log_p = logits[order].double().log_softmax(dim=1)
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits:(i + 1) * n // splits]
        p = part.exp()
        log_marginal = p.mean(dim=0).log()
        scores.append((p * (part - log_marginal)).sum(dim=1).mean().exp())
    scores = torch.stack(scores)
    return scores.mean(), scores.std(unbiased=False)


def _squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """(A, B) squared Euclidean distances between float64 rows, clamped at 0."""
    return (a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2 * a @ b.T).clamp_(min=0)


def _rows_per_block(columns: int) -> int:
    return max(1, _BLOCK_ENTRIES // max(1, columns))


def squared_knn_radii(features: Tensor, k: int = 3, centre: Tensor | None = None) -> Tensor:
    """(N,) float64: each sample's squared distance to its k-th nearest other sample.

    features: (N, D), N > k. centre: subtracted first (default the features' mean;
    distances do not change, the round-off of ``|a|^2 + |b|^2 - 2 a.b`` shrinks).
    """
    n = features.shape[0]
    if n <= k:
        raise ValueError(f"the {k}-th nearest neighbour needs more than {k} samples, got {n}")
    x = features.double()
    x = x - (x.mean(0) if centre is None else centre)
    # The sample itself is at distance 0 among its own set's distances: the (k+1)-th smallest.
    return torch.cat([_squared_distances(block, x).kthvalue(k + 1, dim=1).values
                      for block in x.split(_rows_per_block(n))])


def _inside_any_ball(points: Tensor, centres: Tensor, squared_radii: Tensor) -> Tensor:
    """(P,) bool: whether each point lies within radius_j of some centre j (boundary included)."""
    return torch.cat([(_squared_distances(block, centres) <= squared_radii[None, :]).any(dim=1)
                      for block in points.split(_rows_per_block(centres.shape[0]))])


def precision_recall(real: Tensor, fake: Tensor, k: int = 3,
                     real_squared_radii: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Kynkaanniemi et al.'s (precision, recall) of (N_f, D) fake against (N_r, D) real features.

    Both are fractions in [0, 1] (float64 scalars): precision, of fake samples inside the
    real manifold (the union of balls around the real samples, each with the radius of its
    k-th nearest real neighbour); recall, of real samples inside the fake manifold. Both
    sets need more than k samples. real_squared_radii: `squared_knn_radii(real, k)`
    computed before, for a reference set evaluated against many fake sets.
    """
    centre = real.double().mean(0)
    x, y = real.double() - centre, fake.double() - centre
    if real_squared_radii is None:
        real_squared_radii = squared_knn_radii(real, k, centre)
    fake_squared_radii = squared_knn_radii(fake, k, centre)
    precision = _inside_any_ball(y, x, real_squared_radii).double().mean()
    recall = _inside_any_ball(x, y, fake_squared_radii).double().mean()
    return precision, recall
