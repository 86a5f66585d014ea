"""FID and KID of generated images, on the FID Inception-v3, without torchvision.

FID, the Frechet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two
Time-Scale Update Rule Converge to a Local Nash Equilibrium"), fits a Gaussian to the
2048-d Inception pool features of each image set and measures
``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))``. KID, the Kernel Inception
Distance (Binkowski et al. 2018, "Demystifying MMD GANs"), is the unbiased squared MMD
between the two feature sets under the cubic kernel ``(x.y / d + 1)^3``, averaged over
random subsets; unlike FID it is unbiased, so it can be compared across sample sizes.

The metrics are torchmetrics' (`FrechetInceptionDistance`, `KernelInceptionDistance`);
this module supplies the feature extractor that torchmetrics would otherwise take from
torch-fidelity (which needs torchvision), configures the two metrics for float RGB
images in [0, 1], and overrides two details: FID's matrix square root (symmetric
eigenproblems instead of a general one: faster, same value) and KID's subset size
(capped at the number of images, so small evaluations work). The network's weights are
not shipped: `load_inception` reads pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
from a path or the torch hub cache.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from ganforge.errors import ConfigError, UserError, user_message
from ganforge.metrics.inception import InceptionFeatures

__all__ = [
    "FID_SKIPPED_MESSAGE",
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_URL",
    "GenerativeMetrics",
    "default_weights_paths",
    "load_inception",
    "make_fid_kid",
]

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_FILENAME}"
# torch-fidelity (and so torchmetrics' built-in FID) caches the same TF graph's weights
# under this name, with the same keys; a user who ran either already has it.
_TORCH_FIDELITY_FILENAME = "weights-inception-2015-12-05-6726825d.pth"

FID_SKIPPED_MESSAGE = (
    f"FID/KID skipped: no Inception weights (pass metrics.fid.weights=/path/to/{FID_WEIGHTS_FILENAME})"
)

_FIX = f"pass the path of {FID_WEIGHTS_FILENAME} (download: {FID_WEIGHTS_URL})"


def default_weights_paths() -> list[Path]:
    """Where `load_inception(None)` looks, in order: the torch hub checkpoint cache.

    That is ``$TORCH_HOME/hub/checkpoints/`` (TORCH_HOME defaults to
    ``$XDG_CACHE_HOME/torch``, i.e. ``~/.cache/torch``), where pytorch-fid and
    torch-fidelity download their copies.
    """
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    return [checkpoints / FID_WEIGHTS_FILENAME, checkpoints / _TORCH_FIDELITY_FILENAME]


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """The file's tensors, read with weights_only=True; a UserError naming the file otherwise."""
    if path.is_dir():
        raise UserError(f"Inception weights path {path} is a folder: {_FIX}")
    if not path.is_file():
        raise UserError(f"Inception weights not found: {path}: {_FIX}")
    try:
        # weights_only: the file may come from anywhere, and must not be able to run code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, a pickle with code in it, not a torch file at all
        raise UserError(
            f"cannot read Inception weights {path} ({user_message(error)}): the file is damaged; {_FIX}"
        ) from None
    # A state dict saved inside a checkpoint-like wrapper is accepted too.
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path} is not a state dict of tensors: {_FIX}")
    return state


def _check_keys(path: Path, state: dict[str, Tensor], model: nn.Module) -> None:
    """UserError naming the file unless its keys and shapes are the FID Inception's.

    BatchNorm's ``num_batches_tracked`` counters are ignored: torch-fidelity's converted
    file has none, and they play no part in eval mode.
    """
    def weights(d):
        return {k: tuple(v.shape) for k, v in d.items() if not k.endswith("num_batches_tracked")}

    expected, found = weights(model.state_dict()), weights(state)
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found.keys() - expected.keys())
    if missing or unexpected:
        detail = ", ".join(part for part in (
            f"{len(missing)} missing keys such as {missing[0]}" if missing else "",
            f"{len(unexpected)} unexpected keys such as {unexpected[0]}" if unexpected else "",
        ) if part)
        raise UserError(f"{path} is not the FID Inception-v3 weights file ({detail}): {_FIX}")
    wrong = [k for k in expected if found[k] != expected[k]]
    if wrong:
        k = wrong[0]
        raise UserError(
            f"{path} has the FID Inception-v3 keys but {len(wrong)} wrong shapes "
            f"(such as {k}: {list(found[k])}, expected {list(expected[k])}): {_FIX}"
        )


def load_inception(weights: str | Path | None = None) -> InceptionFeatures | None:
    """The FID Inception-v3 with the standard weights, in eval mode on the CPU; or None.

    weights: the path of ``pt_inception-2015-12-05-6726825d.pth`` (a plain state dict, as
    pytorch-fid publishes it; torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``
    has the same keys and works too). None: use the first of `default_weights_paths()`
    that exists, and return None when there is none (nothing is downloaded).

    Raises a one-line UserError naming the file when it is missing, unreadable, or not
    the FID Inception's weights (wrong keys or shapes).
    """
    if weights is None:
        path = next((p for p in default_weights_paths() if p.is_file()), None)
        if path is None:
            return None
    else:
        path = Path(weights).expanduser()
    state = _read_state_dict(path)
    model = InceptionFeatures()
    _check_keys(path, state, model)
    # strict=False only for the num_batches_tracked counters _check_keys allowed to be absent.
    model.load_state_dict(state, strict=False)
    return model.eval()


class _WithNumFeatures(nn.Module):
    """Wraps an extractor that has no ``num_features`` so torchmetrics need not probe it."""

    def __init__(self, module: nn.Module, num_features: int) -> None:
        super().__init__()
        self.module = module
        self.num_features = num_features

    def forward(self, images: Tensor) -> Tensor:
        return self.module(images)


class _Precomputed(nn.Module):
    """A 'feature extractor' for features computed already: (N, num_features) -> same."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        if features.dim() != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"expected features shaped (N, {self.num_features}), got {tuple(features.shape)}")
        return features


def _psd_factor(sigma: Tensor, max_rank: int) -> Tensor:
    """L, (D, r), with L L^T = sigma for a symmetric PSD (D, D) sigma of rank <= max_rank.

    Directions with eigenvalues under the usual rank tolerance (D * eps * the largest)
    are left out. A covariance of n samples has rank <= n - 1, so when that is well below
    D (an evaluation on fewer images than 1024), the range of sigma is found exactly from
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


def _trace_sqrt_product(sigma1: Tensor, sigma2: Tensor, rank1: int) -> Tensor:
    """Tr((S1 S2)^(1/2)) for symmetric PSD (D, D) S1 (rank <= rank1) and S2.

    S1 S2 is not symmetric, but with S1 = L L^T it has the nonzero eigenvalues of the
    symmetric PSD (r, r) L^T S2 L, so symmetric eigenproblems replace torchmetrics'
    general ``eigvals(S1 @ S2)`` of a (D, D) matrix: faster (D = 2048 took tens of seconds
    on a 2-core CPU with eigvals) and free of the complex round-off a general solver returns.
    """
    factor = _psd_factor(sigma1, rank1)
    inner = factor.T @ sigma2 @ factor
    return torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()


class _FID(FrechetInceptionDistance):
    """torchmetrics' FID with the matrix square root taken by `_trace_sqrt_product`.

    The states (feature sums and outer-product sums, in float64) and their update are
    torchmetrics'; only the last step differs, and gives the same number up to round-off.
    """

    def compute(self) -> Tensor:
        n_real, n_fake = self.real_features_num_samples, self.fake_features_num_samples
        if n_real < 2 or n_fake < 2:
            raise RuntimeError("FID needs at least 2 real and 2 fake samples")
        mean_real, mean_fake = self.real_features_sum / n_real, self.fake_features_sum / n_fake
        cov_real = (self.real_features_cov_sum - n_real * torch.outer(mean_real, mean_real)) / (n_real - 1)
        cov_fake = (self.fake_features_cov_sum - n_fake * torch.outer(mean_fake, mean_fake)) / (n_fake - 1)
        cov_real, cov_fake = (cov_real + cov_real.T) / 2, (cov_fake + cov_fake.T) / 2
        # Tr sqrt(S_r S_f) = Tr sqrt(S_f S_r): factor the covariance of the smaller set.
        if n_fake < n_real:
            cross = _trace_sqrt_product(cov_fake, cov_real, int(n_fake) - 1)
        else:
            cross = _trace_sqrt_product(cov_real, cov_fake, int(n_real) - 1)
        fid = (mean_real - mean_fake).square().sum() + cov_real.trace() + cov_fake.trace() - 2 * cross
        return fid.to(self.orig_dtype)  # the features' dtype, as torchmetrics returns it


def _rows(state: Tensor | list[Tensor]) -> int:
    """Feature vectors in a KID state: a list of (n_i, D) batches, or one tensor once synced."""
    return state.shape[0] if isinstance(state, Tensor) else sum(t.shape[0] for t in state)


class _AdaptiveKID(KernelInceptionDistance):
    """torchmetrics' KID whose ``subset_size`` is an upper bound, with reproducible subsets.

    torchmetrics raises when either set has fewer samples than ``subset_size``; an eval on
    a small validation set should still get a number, so compute uses
    ``min(subset_size, n_real, n_fake)`` (KID's estimator is unbiased at any subset size,
    only noisier; when the cap is both set sizes, every subset is the same and the std is
    0). The random subsets are drawn from a fixed seed on a forked CPU RNG, so KID is the
    same number on every run and the global RNG is left alone.
    """

    def compute(self) -> tuple[Tensor, Tensor]:
        configured, subsets = self.subset_size, self.subsets
        n_real, n_fake = _rows(self.real_features), _rows(self.fake_features)
        self.subset_size = max(1, min(configured, n_real, n_fake))
        if self.subset_size == n_real == n_fake:
            self.subsets = 1  # every "subset" is both whole sets: the same value each time
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                return super().compute()
        finally:
            self.subset_size, self.subsets = configured, subsets


def make_fid_kid(
    feature_extractor: nn.Module,
    kid_subset_size: int = 1000,
    kid_subsets: int = 100,
    num_features: int | None = None,
) -> tuple[FrechetInceptionDistance, KernelInceptionDistance]:
    """torchmetrics' FID and KID on `feature_extractor`, for float RGB images in [0, 1].

    feature_extractor: (N, 3, H, W) float in [0, 1] -> (N, D) features, e.g. the module
        `load_inception` returns. Both metrics call it on the images given to ``update``
        (``normalize=True`` with a custom module means torchmetrics passes the floats
        through unchanged, rather than converting to uint8 for torch-fidelity).
    kid_subset_size, kid_subsets: KID's subset size and count (torch-fidelity's defaults);
        the size is capped at the number of images at compute time.
    num_features: D, when the extractor has no ``num_features`` attribute. Without either,
        torchmetrics would probe the extractor with a 299x299 image to find D.

    Returns (fid, kid), instances of torchmetrics' classes: ``fid.update(images, real=bool)``,
    ``fid.compute()`` -> scalar tensor; ``kid.compute()`` -> (mean, std) over subsets. Two
    overrides: FID takes its matrix square root through symmetric eigenproblems (faster,
    same value), and KID caps its subset size at the number of images and draws its
    subsets reproducibly.
    """
    if not isinstance(kid_subset_size, int) or kid_subset_size < 2:
        raise ConfigError(f"KID subset size must be an integer of at least 2, got {kid_subset_size!r}")
    if not isinstance(kid_subsets, int) or kid_subsets < 1:
        raise ConfigError(f"KID subsets must be a positive integer, got {kid_subsets!r}")
    if num_features is None:
        num_features = getattr(feature_extractor, "num_features", None)
    if num_features is None:
        raise ValueError("feature_extractor has no num_features attribute: pass num_features=")
    if getattr(feature_extractor, "num_features", None) != num_features:
        feature_extractor = _WithNumFeatures(feature_extractor, int(num_features))
    fid = _FID(feature=feature_extractor, normalize=True)
    with warnings.catch_warnings():
        # KID keeps every feature vector (8 KB per image at D=2048); the warning says so
        # on every construction, which is noise for the evaluation sizes used here.
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = _AdaptiveKID(feature=feature_extractor, subsets=kid_subsets, subset_size=kid_subset_size,
                           normalize=True)
    return fid, kid


class GenerativeMetrics(nn.Module):
    """FID and KID of fake images against real ones, accumulated over batches.

    Each batch's images go through the feature extractor once, and the features feed
    both metrics (building the metrics on the extractor itself would run it twice).

    >>> metrics = GenerativeMetrics(load_inception(path))   # doctest: +SKIP
    >>> for fake, real in batches:                          # (N, 3, H, W) RGB in [0, 1]
    ...     metrics.update(fake, real)
    >>> metrics.compute()                                   # {"fid": ..., "kid_mean": ..., "kid_std": ...}

    `.to(device)` moves the extractor and the metric states; ``update`` moves the images
    to the extractor's device. num_features: the extractor's D, when it has no
    ``num_features`` attribute (`InceptionFeatures` has one: 2048).
    """

    def __init__(self, feature_extractor: nn.Module, kid_subset_size: int = 1000, kid_subsets: int = 100,
                 num_features: int | None = None) -> None:
        super().__init__()
        if num_features is None:
            num_features = getattr(feature_extractor, "num_features", None)
        if num_features is None:
            raise ValueError("feature_extractor has no num_features attribute: pass num_features=")
        self.extractor = feature_extractor
        self.fid, self.kid = make_fid_kid(_Precomputed(int(num_features)), kid_subset_size, kid_subsets)

    def _device(self) -> torch.device:
        parameter = next(self.extractor.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    @torch.no_grad()
    def update(self, fake: Tensor, real: Tensor) -> None:
        """Add a batch: fake (N, 3, H, W) and real (M, 3, H', W') RGB floats in [0, 1]."""
        device = self._device()
        self.update_features(self.extractor(fake.to(device)), self.extractor(real.to(device)))

    @torch.no_grad()
    def update_features(self, fake_features: Tensor, real_features: Tensor) -> None:
        """Add features computed already: fake (N, D) and real (M, D)."""
        self.fid.update(fake_features, real=False)
        self.fid.update(real_features, real=True)
        self.kid.update(fake_features, real=False)
        self.kid.update(real_features, real=True)

    @property
    def counts(self) -> tuple[int, int]:
        """(fake, real) images seen since the last reset (on this process)."""
        return int(self.fid.fake_features_num_samples), int(self.fid.real_features_num_samples)

    def compute(self) -> dict[str, float]:
        """{"fid": float, "kid_mean": float, "kid_std": float} over everything seen.

        Raises a UserError with fewer than 2 fake or 2 real images (no covariance).
        """
        fake, real = self.counts
        if fake < 2 or real < 2:
            raise UserError(f"FID/KID need at least 2 fake and 2 real images, got {fake} fake and {real} real")
        kid_mean, kid_std = self.kid.compute()
        return {"fid": float(self.fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}

    def reset(self) -> None:
        """Forget every image seen (the extractor is kept)."""
        self.fid.reset()
        self.kid.reset()
