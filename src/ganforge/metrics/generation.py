"""`GenerationMetrics`: FID, KID, IS and precision/recall of generated images, from one
pass of a feature extractor per batch.

The extractor is the FID Inception (`InceptionFeatures`, 2048-d features, 1008 logits) or
the offline stand-in (`FeatureClassifier`); either maps RGB images in [0, 1] to
``(features (N, D), logits (N, K))``. The features feed FID, KID and precision/recall, the
fake images' logits the Inception Score. The arithmetic is in `ganforge.metrics.scores`.

Data parallel: the two sets are torchmetrics `Metric` list states with
``dist_reduce_fx="cat"``, so ``compute`` (run on every process) gathers every process's
features with torchmetrics' own all-gather and each process gets the same numbers; there
is no collective of ours. The reference set can stay: `reset_fake` forgets the fake
images only, and what is derived from the real features alone (their Gaussian, their
nearest-neighbour radii) is kept until the real set changes, so a run that evaluates every
N steps extracts and summarises its reference set once.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from ganforge.checks import check_int
from ganforge.errors import UserError
from ganforge.metrics.scores import (
    Gaussian,
    frechet_distance,
    inception_score,
    kernel_distance,
    precision_recall,
    squared_knn_radii,
)
from ganforge.nn.precision import without_autocast

__all__ = ["GENERATION_METRIC_KEYS", "GenerationMetrics"]

GENERATION_METRIC_KEYS = ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall")


class _FeatureSet(Metric):
    """One image set's (N, D) features, and its (N, K) logits if asked, kept whole.

    compute -> (features, logits or None), concatenated over batches and, under data
    parallel, over processes (torchmetrics' gather of ``cat`` list states).
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, num_features: int, num_classes: int | None) -> None:
        # No compute cache: every process must take part in every gather, whatever it updated.
        super().__init__(compute_with_cache=False)
        self.shapes = {"features": num_features} | ({"logits": num_classes} if num_classes else {})
        for name in self.shapes:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, features: Tensor, logits: Tensor | None = None) -> None:
        self.features.append(features.detach().float())
        if "logits" in self.shapes:
            self.logits.append(logits.detach().float())

    @property
    def count(self) -> int:
        """Samples held on this process."""
        state = self.features
        return state.shape[0] if isinstance(state, Tensor) else sum(t.shape[0] for t in state)

    def pad_if_empty(self) -> None:
        """Give an empty set one (0, width) block, so that a process which saw no images
        still takes part in the gather with tensors of the right shape (torchmetrics would
        send a 1-d empty tensor). Call before ``compute``, which gathers first."""
        for name, width in self.shapes.items():
            if isinstance(getattr(self, name), list) and not getattr(self, name):
                getattr(self, name).append(torch.zeros(0, width, device=self.device))

    def compute(self) -> tuple[Tensor, Tensor | None]:
        logits = dim_zero_cat(self.logits) if "logits" in self.shapes else None
        return dim_zero_cat(self.features), logits


class GenerationMetrics(nn.Module):
    """FID, KID, IS and precision/recall of fake images against real ones, over batches.

    >>> metrics = GenerationMetrics(load_inception(path))   # doctest: +SKIP
    >>> for batch in reference_loader:                      # once: the real set stays
    ...     metrics.update_real(batch["image"])             # (N, 3, H, W) RGB in [0, 1]
    >>> for fake in generated_batches:                      # every evaluation
    ...     metrics.update_fake(fake)
    >>> metrics.compute()                                   # {"fid": ..., "recall": ...}
    >>> metrics.reset_fake()                                # ready for the next evaluation

    extractor: ``(N, 3, H, W) float in [0, 1] -> (features (N, D), logits (N, K))`` with
        attributes ``num_features`` (D) and ``num_classes`` (K), e.g. `InceptionFeatures`
        or `FeatureClassifier`. It runs without autocast, under no_grad, on the device of
        its parameters (``.to(device)`` moves it and the states).
    kid_subset_size, kid_subsets: KID's subsets (torch-fidelity's defaults 1000 and 100);
        the size is capped at the number of images.
    is_splits: the Inception Score's splits (10, as is usual), capped at the image count.
    neighbours: precision/recall's k (3, Kynkaanniemi et al.'s choice).
    seed: of KID's subsets and IS's shuffle, so that the numbers are reproducible.

    compute() -> {"fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision",
    "recall"}: floats over every image seen on every process; IS is of the fake images.
    Precision and recall are NaN when either set has at most ``neighbours`` images.
    """

    def __init__(self, extractor: nn.Module, kid_subset_size: int = 1000, kid_subsets: int = 100,
                 is_splits: int = 10, neighbours: int = 3, seed: int = 0) -> None:
        super().__init__()
        self.kid_subset_size = check_int("kid_subset_size", kid_subset_size, 2)
        self.kid_subsets = check_int("kid_subsets", kid_subsets, 1)
        self.is_splits = check_int("is_splits", is_splits, 1)
        self.neighbours = check_int("neighbours", neighbours, 1)
        self.seed = check_int("seed", seed)
        num_features, num_classes = (getattr(extractor, key, None) for key in ("num_features", "num_classes"))
        if not isinstance(num_features, int) or not isinstance(num_classes, int):
            raise ValueError("the extractor needs int attributes num_features (D) and num_classes (K)")
        self.extractor = extractor
        self.num_features, self.num_classes = num_features, num_classes
        self.real = _FeatureSet(num_features, None)
        self.fake = _FeatureSet(num_features, num_classes)
        self._reference: tuple[Tensor, Gaussian, Tensor | None] | None = None  # fingerprint, Gaussian, radii

    def _device(self) -> torch.device:
        parameter = next(self.extractor.parameters(), None)
        return parameter.device if parameter is not None else self.fake.device

    @torch.no_grad()
    def extract(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3, H, W) RGB in [0, 1] -> (features (N, D), logits (N, K)), float32."""
        images = images.to(self._device())
        with without_autocast(images):
            features, logits = self.extractor(images.float())
        return features.float(), logits.float()

    def update_real(self, images: Tensor) -> None:
        """Add a batch of reference images, (N, 3, H, W) RGB in [0, 1]."""
        self.update_real_features(self.extract(images)[0])

    def update_fake(self, images: Tensor) -> None:
        """Add a batch of generated images, (N, 3, H, W) RGB in [0, 1]."""
        self.update_fake_features(*self.extract(images))

    def update(self, fake: Tensor, real: Tensor) -> None:
        """Add fake (N, 3, H, W) and real (M, 3, H', W') RGB floats in [0, 1]."""
        self.update_fake(fake)
        self.update_real(real)

    def _check(self, name: str, tensor: Tensor, width: int) -> Tensor:
        if tensor.dim() != 2 or tensor.shape[1] != width:
            raise ValueError(f"expected {name} shaped (N, {width}), got {tuple(tensor.shape)}")
        return tensor.to(self.fake.device)

    def update_real_features(self, features: Tensor) -> None:
        """Add reference features computed already, (N, D)."""
        self.real.update(self._check("real features", features, self.num_features))
        self._reference = None

    def update_fake_features(self, features: Tensor, logits: Tensor) -> None:
        """Add generated images' features (N, D) and logits (N, K) computed already."""
        if features.shape[0] != logits.shape[0]:
            raise ValueError(f"{features.shape[0]} feature rows but {logits.shape[0]} logit rows")
        self.fake.update(self._check("fake features", features, self.num_features),
                         self._check("fake logits", logits, self.num_classes))

    @property
    def counts(self) -> tuple[int, int]:
        """(fake, real) images held on this process."""
        return self.fake.count, self.real.count

    def reset(self) -> None:
        """Forget every image, real and fake (the extractor is kept)."""
        self.real.reset()
        self.reset_fake()
        self._reference = None

    def reset_fake(self) -> None:
        """Forget the fake images; the reference set and what is derived from it stay."""
        self.fake.reset()

    def _reference_statistics(self, real: Tensor, with_radii: bool) -> tuple[Gaussian, Tensor | None]:
        """The real set's Gaussian and squared k-NN radii, recomputed only when the set changed.

        The cache is checked against a fingerprint of the gathered set (its size and two
        float64 sums), not against local updates, so every process reuses or recomputes alike.
        """
        fingerprint = torch.stack([torch.tensor(float(real.shape[0]), dtype=torch.float64, device=real.device),
                                   real.double().sum(), real.double().square().sum()])
        cached = self._reference
        if cached is None or not torch.equal(cached[0], fingerprint) or (with_radii and cached[2] is None):
            radii = squared_knn_radii(real, self.neighbours) if with_radii else None
            cached = self._reference = (fingerprint, Gaussian.of(real).factored(), radii)
        return cached[1], cached[2]

    def compute(self) -> dict[str, float]:
        """The seven metrics over every image seen (see the class docstring for the keys).

        Raises a UserError with fewer than 2 fake or 2 real images (no covariance).
        """
        self.real.pad_if_empty()
        self.fake.pad_if_empty()
        with warnings.catch_warnings():
            # torchmetrics warns when a process that saw no images computes; it must (gathers).
            warnings.filterwarnings("ignore", message=".*was called before the ``update`` method.*")
            real, _ = self.real.compute()
            fake, logits = self.fake.compute()
        if fake.shape[0] < 2 or real.shape[0] < 2:
            raise UserError(f"generation metrics need at least 2 fake and 2 real images, "
                            f"got {fake.shape[0]} fake and {real.shape[0]} real")
        with_radii = min(real.shape[0], fake.shape[0]) > self.neighbours
        gaussian, radii = self._reference_statistics(real, with_radii)
        kid_mean, kid_std = kernel_distance(real, fake, self.kid_subsets, self.kid_subset_size, self.seed)
        is_mean, is_std = inception_score(logits, self.is_splits, self.seed)
        precision = recall = math.nan
        if with_radii:
            precision, recall = (float(v) for v in precision_recall(real, fake, self.neighbours, radii))
        return {
            "fid": float(frechet_distance(gaussian, Gaussian.of(fake))),
            "kid_mean": float(kid_mean), "kid_std": float(kid_std),
            "is_mean": float(is_mean), "is_std": float(is_std),
            "precision": precision, "recall": recall,
        }
