"""Generative compression (Agustsson, Tschannen, Mentzer, Timofte, Van Gool, "Generative
Adversarial Networks for Extreme Learned Image Compression", ICCV 2019).

    image x -> CompressionEncoder E -> w (C channels, 1/16 size)
            -> SoftToHardQuantizer q -> w_bar (each element one of L centers)
            [-> concatenated with NoiseGenerator's map]
            -> CompressionGenerator G -> x_hat

Channel counts follow the paper (60, 120, 240, 480, 960), all scaled by `width` for CPU
demos. Differences from the public TensorFlow code, on purpose: the encoder's last
convolution has no activation (a ReLU there left only the non-negative centers in use),
the quantizer passes gradients to the encoder (no final round), and the noise generator
fits any latent size.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.checks import check_int, check_number
from ganforge.errors import ConfigError
from ganforge.models.patchgan import PatchDiscriminator
from ganforge.nn import ActSpec, NormSpec, init_gan_weights
from ganforge.nn.blocks import ResidualBlock, conv_norm_act
from ganforge.nn.quantize import SoftToHardQuantizer

__all__ = [
    "CompressionEncoder",
    "NoiseGenerator",
    "CompressionGenerator",
    "MultiScaleDiscriminator",
    "GenerativeCompression",
    "DOWNSAMPLING",
]

DOWNSAMPLING = 16  # four stride-2 convolutions
PAPER_ACT = ActSpec("relu")
PAPER_NORM = NormSpec("instance")
PAPER_WIDTHS = (60, 120, 240, 480, 960)

NormLike = NormSpec | Mapping[str, Any] | str | None
ActLike = ActSpec | Mapping[str, Any] | str | None


def scaled(width: float) -> list[int]:
    """The paper's channel counts times `width`, at least 1 each."""
    check_number("model.width", width, 0, open_minimum=True)
    return [max(1, round(c * width)) for c in PAPER_WIDTHS]


class CompressionEncoder(nn.Module):
    """c7s1-60, d120, d240, d480, d960, c3s1-C (every count times `width`).

    (N, 3, H, W) -> (N, C, H/16, W/16) for H, W multiples of 16. No norm and no
    activation after the last convolution, so w can take any sign.
    """

    def __init__(self, bottleneck: int, width: float = 1.0, norm: NormLike = "instance", act: ActLike = None,
                 in_channels: int = 3) -> None:
        super().__init__()
        check_int("model.bottleneck", bottleneck, 1)
        norm, act = NormSpec.from_config(norm, PAPER_NORM), ActSpec.from_config(act, PAPER_ACT)
        widths = scaled(width)
        layers = [conv_norm_act(in_channels, widths[0], 7, norm, act)]
        layers += [conv_norm_act(a, b, 3, norm, act, stride=2) for a, b in zip(widths, widths[1:])]
        layers += [nn.ReflectionPad2d(1), norm.wrap(nn.Conv2d(widths[-1], bottleneck, 3))]
        self.layers = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class NoiseGenerator(nn.Module):
    """The DCGAN-style upsampler of the original: noise -> dense -> a (dim, h/8, w/8) map ->
    three stride-2 5x5 transposed convs to dim/2, dim/4, dim/8 -> reflect pad 3 + 7x7 conv
    to C channels.

    To fit any latent size h x w, the dense layer acts on a grid of noise vectors, one per
    cell of the (ceil(h/8), ceil(w/8)) map (a 1x1 convolution), and the result is cropped
    to h x w. `forward(shape)` -> (N, C, h, w) for shape = (N, h, w); pass a seeded
    torch.Generator for repeatable noise.
    """

    def __init__(self, bottleneck: int, noise_dim: int = 128, dim: int = 256, norm: NormLike = "batch",
                 act: ActLike = None) -> None:
        super().__init__()
        check_int("model.noise_dim", noise_dim, 1)
        check_int("model.noise_channels", dim, 8)
        norm, act = NormSpec.from_config(norm, PAPER_NORM), ActSpec.from_config(act, PAPER_ACT)
        self.noise_dim = noise_dim
        # Instance norm is undefined on a 1x1 grid (one image of 8 rows or fewer), so the
        # dense layer then goes without; the other kinds apply as chosen.
        dense_norm = nn.Identity() if norm.kind == "instance" else norm.layer(dim)
        self.dense = nn.Sequential(norm.wrap(nn.Conv2d(noise_dim, dim, 1)), act.layer(), dense_norm)
        self.up = nn.Sequential(
            *[conv_norm_act(dim // 2**i, dim // 2 ** (i + 1), 5, norm, act, stride=2, transposed=True) for i in range(3)]
        )
        self.out = nn.Sequential(nn.ReflectionPad2d(3), norm.wrap(nn.Conv2d(dim // 8, bottleneck, 7)))
        init_gan_weights(self)

    def forward(self, shape: Sequence[int], generator: torch.Generator | None = None) -> torch.Tensor:
        batch, height, width = shape
        device = self.dense[0].weight.device
        z = torch.randn(batch, self.noise_dim, math.ceil(height / 8), math.ceil(width / 8),
                        generator=generator, device=device)
        # Crop after the 7x7 convolution: its mirror padding needs a map wider than 3.
        return self.out(self.up(self.dense(z)))[..., :height, :width]


class CompressionGenerator(nn.Module):
    """c3s1-960, R960 x 9, u480, u240, u120, u60, c7s1-3, tanh (every count times `width`).

    (N, in_channels, h, w) -> (N, 3, 16h, 16w) in [-1, 1]; in_channels is C, or 2C when
    the noise map is concatenated.
    """

    def __init__(self, in_channels: int, width: float = 1.0, residual_blocks: int = 9, norm: NormLike = "instance",
                 act: ActLike = None) -> None:
        super().__init__()
        check_int("model.residual_blocks", residual_blocks, 0)
        norm, act = NormSpec.from_config(norm, PAPER_NORM), ActSpec.from_config(act, PAPER_ACT)
        widths = scaled(width)[::-1]  # 960, 480, 240, 120, 60
        layers = [conv_norm_act(in_channels, widths[0], 3, norm, act)]
        layers += [ResidualBlock(widths[0], norm, act) for _ in range(residual_blocks)]
        layers += [conv_norm_act(a, b, 3, norm, act, stride=2, transposed=True) for a, b in zip(widths, widths[1:])]
        layers += [nn.ReflectionPad2d(3), norm.wrap(nn.Conv2d(widths[-1], 3, 7)), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MultiScaleDiscriminator(nn.Module):
    """`scales` PatchGANs (pix2pixHD, Wang et al. 2018) on the image and its 2x, 4x, ...
    average-pooled versions (3x3 window, stride 2, padding not counted).

    `forward(x)` -> a list of logit maps, finest first; `features(x)` (or
    `forward(x, features=True)`, the form a DistributedDataParallel wrapper can call) -> per
    scale, the list of every block's output (the last being the logits) for feature matching.
    """

    def __init__(self, in_channels: int = 3, scales: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: NormLike = "instance", act: ActLike = None) -> None:
        super().__init__()
        check_int("model.discriminator.scales", scales, 1)
        norm = NormSpec.from_config(norm, PAPER_NORM)
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, ndf=ndf, n_layers=n_layers, norm=norm, act=act) for _ in range(scales)
        )
        # The coarsest scale's last normalized map is side / 2**n_layers - 1 wide: keep it >= 2.
        self.min_side = 3 * 2**n_layers * 2 ** (scales - 1)

    def _pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        if min(x.shape[-2:]) < self.min_side:
            raise ConfigError(
                f"the multiscale discriminator ({len(self.discriminators)} scales) needs image sides of at least "
                f"{self.min_side}, got {tuple(x.shape[-2:])}: raise data.crop_size or lower "
                "model.discriminator.scales or model.discriminator.n_layers"
            )
        images = [x]
        for _ in range(len(self.discriminators) - 1):
            images.append(F.avg_pool2d(images[-1], 3, stride=2, padding=1, count_include_pad=False))
        return images

    def features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        return [d.features(image) for d, image in zip(self.discriminators, self._pyramid(x))]

    def forward(self, x: torch.Tensor, features: bool = False) -> list[torch.Tensor] | list[list[torch.Tensor]]:
        if features:
            return self.features(x)
        return [d(image) for d, image in zip(self.discriminators, self._pyramid(x))]


class GenerativeCompression(nn.Module):
    """Everything on the generator's side: encoder, quantizer, optional noise, generator.

    `forward(x)` -> (x_hat, w_bar) for x in [-1, 1], (N, 3, H, W) with H, W multiples of
    16; `encode(x)` -> continuous w; `decode(w_bar)` -> x_hat. The rate is at most
    `bpp_bound` = C * log2(L) / 16^2 bits per pixel.
    """

    def __init__(self, bottleneck: int, quantizer: SoftToHardQuantizer, width: float = 1.0,
                 residual_blocks: int = 9, sample_noise: bool = False, noise_dim: int = 128,
                 noise_channels: int = 256, norm: NormLike = "instance", act: ActLike = None) -> None:
        super().__init__()
        self.bottleneck = check_int("model.bottleneck", bottleneck, 1)
        self.encoder = CompressionEncoder(bottleneck, width, norm, act)
        self.quantizer = quantizer
        self.noise = NoiseGenerator(bottleneck, noise_dim, noise_channels, norm, act) if sample_noise else None
        in_channels = 2 * bottleneck if sample_noise else bottleneck
        self.generator = CompressionGenerator(in_channels, width, residual_blocks, norm, act)

    @property
    def bpp_bound(self) -> float:
        return self.bottleneck * math.log2(self.quantizer.num_centers) / DOWNSAMPLING**2

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, w_bar: torch.Tensor, noise_generator: torch.Generator | None = None) -> torch.Tensor:
        if self.noise is not None:
            noise = self.noise((w_bar.shape[0], *w_bar.shape[-2:]), generator=noise_generator)
            w_bar = torch.cat([w_bar, noise.to(w_bar.dtype)], dim=1)
        return self.generator(w_bar)

    def forward(self, x: torch.Tensor, noise_generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        w_bar = self.quantizer(self.encode(x))
        return self.decode(w_bar, noise_generator), w_bar
