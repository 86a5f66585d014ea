"""Normalization, chosen by one config value for every network that uses it.

Two kinds of normalization exist in GANs and this module hides the difference:

* a layer after the convolution: batch, instance, layer, pixel (`NormSpec.layer`);
* a reparametrization of the convolution's weight: spectral, weight (`NormSpec.wrap`).

In configs, the kind "paper" stands for each network's published choice (pix2pix: batch;
SNGAN: batch in G, spectral in D): `NormSpec.from_config` returns the network's default
for it, with the other options given.

A network builds each convolution as ``spec.wrap(Conv2d(..., bias=spec.conv_bias))``
followed by ``spec.layer(channels)``; the two calls together give the chosen kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from ganforge.checks import check_int, check_number
from ganforge.errors import ConfigError
from ganforge.nn.spec import merge_spec

__all__ = ["NORM_KINDS", "LayerNorm2d", "NormSpec", "PixelNorm", "make_norm", "spectral_sigma"]

NORM_KINDS = ("batch", "instance", "layer", "pixel", "spectral", "weight", "none")
# What a network may be given in a config besides NORM_KINDS: its own published choice.
PAPER = "paper"


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


class LayerNorm2d(nn.GroupNorm):
    """Layer normalization of feature maps (Ba et al. 2016, "Layer Normalization"), as the
    GAN studies use it (Kurach et al. 2019; compare_gan's ``layer_norm``): each sample is
    normalized over all of (C, H, W) together, ``(x - mean) / sqrt(var + eps)``, then scaled
    and shifted per channel (``gamma_c``, ``beta_c``; `affine`). That is GroupNorm with one
    group. (N, C, H, W) -> same shape; no running statistics, so train and eval agree.
    """

    def __init__(self, channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(1, channels, eps=eps, affine=affine)


@dataclass(frozen=True)
class NormSpec:
    """Which normalization a network uses, and its options.

    kind: one of batch, instance, layer, pixel, spectral, weight, none.
    n_power_iterations: spectral only; power-iteration steps per forward pass in training.
        The iteration vector is a buffer, so it carries over from step to step (Miyato et
        al., ICLR 2018, Algorithm 1) and one step per forward is enough in training.
    eps: pixel only; added under the square root.

    weight: weight normalization (Salimans & Kingma 2016), w = g * v / ||v|| per output
    channel, torch's ``parametrizations.weight_norm``.
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
        if spec is None:
            return base
        if spec == PAPER:
            return base
        if isinstance(spec, Mapping) and spec.get("kind") == PAPER:
            # the network's own kind, with the options the config gives
            return merge_spec(cls, {k: v for k, v in spec.items() if k != "kind"}, base, "norm")
        return merge_spec(cls, spec, base, "norm")

    @property
    def conv_bias(self) -> bool:
        """Whether a convolution followed by this norm needs a bias.

        Batch norm subtracts the batch mean, which cancels any bias before it, so the
        convolution has none, as in the reference pix2pix implementation (which keeps the
        bias before its affine-free instance norm; so do we).
        """
        return self.kind != "batch"

    def layer(self, channels: int, affine: bool = True) -> nn.Module:
        """The layer that follows a convolution with `channels` outputs (Identity if none).

        affine=False leaves out the layer's own scale and shift (batch, layer), for a
        conditional norm that brings per-class ones (ganforge.nn.conditional)."""
        return make_norm(self.kind, channels, eps=self.eps, affine=affine)

    @property
    def reparametrizes(self) -> bool:
        """Whether this kind acts on the weights (spectral, weight) rather than as a layer."""
        return self.kind in ("spectral", "weight")

    def wrap(self, module: nn.Module) -> nn.Module:
        """Reparametrize `module`'s weight: by its largest singular value (spectral), or as
        direction times length (weight); other kinds return `module` as it is."""
        if self.kind == "spectral":
            return spectral_norm(module, n_power_iterations=self.n_power_iterations)
        if self.kind == "weight":
            # dim 0 is the output channel of Conv and Linear; transposed convolutions keep it at 1.
            dim = 1 if isinstance(module, nn.modules.conv._ConvTransposeNd) else 0
            return weight_norm(module, dim=dim)
        return module


def make_norm(kind: str, channels: int, eps: float = 1e-8, affine: bool = True) -> nn.Module:
    """The normalization layer of `kind` for `channels` feature maps: (N, C, H, W) -> same shape.

    batch: BatchNorm2d with learnable scale and shift (unless not `affine`), running statistics.
    instance: InstanceNorm2d without affine parameters or running statistics (as in pix2pix).
    layer: `LayerNorm2d` (over C, H, W; per-channel scale and shift unless not `affine`).
    pixel: `PixelNorm`.
    spectral, weight, none: Identity; spectral and weight norm act on the weights, see
    `NormSpec.wrap`.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=affine)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "layer":
        return LayerNorm2d(channels, affine=affine)
    if kind == "pixel":
        return PixelNorm(eps)
    if kind in ("spectral", "weight", "none"):
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
