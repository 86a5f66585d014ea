"""Normalization, chosen by one config value for every network that uses it.

Two kinds of normalization exist in GANs and this module hides the difference:

* a layer after the convolution: batch, instance, pixel (`NormSpec.layer`);
* a reparametrization of the convolution's weight: spectral (`NormSpec.wrap`).

A network builds each convolution as ``spec.wrap(Conv2d(..., bias=spec.conv_bias))``
followed by ``spec.layer(channels)``; the two calls together give the chosen kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforge.checks import check_int, check_number
from ganforge.errors import ConfigError
from ganforge.nn.spec import merge_spec

__all__ = ["NORM_KINDS", "NormSpec", "PixelNorm", "make_norm", "spectral_sigma"]

NORM_KINDS = ("batch", "instance", "pixel", "spectral", "none")


class PixelNorm(nn.Module):
    """Pixelwise feature normalization (Karras et al., "Progressive Growing of GANs", ICLR 2018, sec. 4.2).

    Each pixel's feature vector is divided by its root mean square over channels:
    ``b[n, :, y, x] = a[n, :, y, x] / sqrt(mean_c a[n, c, y, x]^2 + eps)`` with eps = 1e-8.
    Shape: (N, C, H, W) -> (N, C, H, W); no parameters, no running statistics.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


@dataclass(frozen=True)
class NormSpec:
    """Which normalization a network uses, and its options.

    kind: one of batch, instance, pixel, spectral, none.
    n_power_iterations: spectral only; power-iteration steps per forward pass in training.
        The iteration vector is a buffer, so it carries over from step to step (Miyato et
        al., ICLR 2018, Algorithm 1) and one step per forward is enough in training.
    eps: pixel only; added under the square root.
    """

    kind: str = "batch"
    n_power_iterations: int = 1
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.kind not in NORM_KINDS:
            raise ConfigError(
                f"unknown norm kind {self.kind!r}: choose one of {', '.join(NORM_KINDS)} (e.g. norm=spectral)"
            )
        check_int("norm.n_power_iterations", self.n_power_iterations, 1)
        check_number("norm.eps", self.eps, 0, open_minimum=True)

    @classmethod
    def from_config(cls, spec: "NormSpec | Mapping[str, Any] | str | None", default: "NormSpec | None" = None) -> "NormSpec":
        """Build from a kind name, a mapping of fields, or None (meaning `default`, else batch).

        A plain name keeps the other options of `default`, so ``norm=pixel`` with a
        per-network ``model.discriminator.norm=spectral`` keeps the global options.
        """
        base = default if default is not None else cls()
        return base if spec is None else merge_spec(cls, spec, base, "norm")

    @property
    def conv_bias(self) -> bool:
        """Whether a convolution followed by this norm needs a bias.

        Batch norm subtracts the batch mean, which cancels any bias before it, so the
        convolution has none, as in the reference pix2pix implementation (which keeps the
        bias before its affine-free instance norm; so do we).
        """
        return self.kind != "batch"

    def layer(self, channels: int) -> nn.Module:
        """The layer that follows a convolution with `channels` outputs (Identity if none)."""
        return make_norm(self.kind, channels, eps=self.eps)

    def wrap(self, module: nn.Module) -> nn.Module:
        """Reparametrize `module`'s weight by its largest singular value if the kind is spectral."""
        if self.kind != "spectral":
            return module
        return spectral_norm(module, n_power_iterations=self.n_power_iterations)


def make_norm(kind: str, channels: int, eps: float = 1e-8) -> nn.Module:
    """The normalization layer of `kind` for `channels` feature maps: (N, C, H, W) -> same shape.

    batch: BatchNorm2d with learnable scale and shift, running statistics.
    instance: InstanceNorm2d without affine parameters or running statistics (as in pix2pix).
    pixel: `PixelNorm`.
    spectral, none: Identity; spectral norm acts on the weights, see `NormSpec.wrap`.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "pixel":
        return PixelNorm(eps)
    if kind in ("spectral", "none"):
        return nn.Identity()
    raise ConfigError(f"unknown norm kind {kind!r}: choose one of {', '.join(NORM_KINDS)}")


def spectral_sigma(module: nn.Module) -> torch.Tensor:
    """The exact largest singular value of `module`'s effective weight, as spectral norm sees it.

    The weight is flattened to a matrix with the output-channel axis first (dim 1 for
    transposed convolutions, as torch's spectral_norm does).
    """
    weight = module.weight.detach()
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        weight = weight.transpose(0, 1)
    return torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2)
