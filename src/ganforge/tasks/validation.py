"""Validation metrics of the families that reconstruct a target (pix2pix, compression):
L1, PSNR (the mean of per-image values), SSIM, and MS-SSIM when every image is large
enough for its five scales; all in float32, also under mixed precision."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.image import (
    MultiScaleStructuralSimilarityIndexMeasure,
    PeakSignalNoiseRatio,
    StructuralSimilarityIndexMeasure,
)

from ganforge.nn.precision import without_autocast

__all__ = ["MS_SSIM_MIN_SIDE", "Float32MSSSIM", "Float32SSIM", "ReconstructionMetrics"]

# MS-SSIM's five scales with an 11-pixel window need sides of at least (11 - 1) * 2**4 + 1.
MS_SSIM_MIN_SIDE = 161


class _Float32Update:
    """A metric whose update runs in float32 also under autocast (SSIM's Gaussian window is
    a convolution, which bf16-mixed / 16-mixed would run in half precision)."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        with without_autocast(preds):
            super().update(preds.float(), target.float())


class Float32SSIM(_Float32Update, StructuralSimilarityIndexMeasure):
    pass


class Float32MSSSIM(_Float32Update, MultiScaleStructuralSimilarityIndexMeasure):
    pass


class ReconstructionMetrics(nn.Module):
    """val/l1, val/psnr, val/ssim and val/ms_ssim of RGB outputs in [0, 1] against their
    targets, (N, 3, H, W) each. MS-SSIM is reported only when every image of the
    validation was at least MS_SSIM_MIN_SIDE on each side."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics = MetricCollection(
            {
                "l1": MeanAbsoluteError(),
                "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
                "ssim": Float32SSIM(data_range=1.0),
            },
            prefix="val/",
        )
        self.ms_ssim = Float32MSSSIM(data_range=1.0)
        self._ms_ssim_skipped = False

    def update(self, fake_rgb: torch.Tensor, real_rgb: torch.Tensor) -> None:
        self.metrics.update(fake_rgb, real_rgb)
        if min(fake_rgb.shape[-2:]) >= MS_SSIM_MIN_SIDE:
            self.ms_ssim.update(fake_rgb, real_rgb)
        else:
            self._ms_ssim_skipped = True

    def compute_and_reset(self) -> dict[str, torch.Tensor]:
        results = dict(self.metrics.compute())
        self.metrics.reset()
        if not self._ms_ssim_skipped and self.ms_ssim.update_count:
            results["val/ms_ssim"] = self.ms_ssim.compute()
        self.ms_ssim.reset()
        self._ms_ssim_skipped = False
        return results
