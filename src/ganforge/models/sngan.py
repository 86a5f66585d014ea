"""The ResNet GAN of Miyato, Kataoka, Koyama, Yoshida, "Spectral Normalization for
Generative Adversarial Networks", ICLR 2018, Table 4 and appendix B (CIFAR-10), with the
class conditioning of Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018.

    G: z (128) -> dense -> (256, S/8, S/8) -> 3 x up ResBlock 256 -> norm, ReLU
       -> conv 3x3 -> out_channels -> tanh
    D: optimized down ResBlock 128 -> down ResBlock 128 -> 2 x ResBlock 128 -> ReLU
       -> global sum pooling -> dense -> 1 (+ projection when conditional)

Details follow Miyato's chainer code (pfnet-research/sngan_projection, gen_models/ and
dis_models/resblocks.py, resnet_32.py, snresnet_32.py):

* G block: norm -> act -> 2x nearest upsampling -> conv3x3 -> norm -> act -> conv3x3, plus
  a shortcut 1x1 conv of the upsampled input when the channels change or it upsamples.
* D block: act -> conv3x3 -> act -> conv3x3 -> 2x2 average pooling (down blocks), plus a
  shortcut 1x1 conv (then pooling) when the channels change or it downsamples. The first,
  "optimized" block has no activation before its first conv (it sees the image) and its
  shortcut pools first, then convolves.
* Init: Glorot uniform with gain sqrt(2) on the residual convs, gain 1 on the shortcuts,
  G's dense and last conv, D's dense and the embedding; biases 0; norms' scale 1, shift 0.
* Every conv and G's dense have a bias (chainer's default), even before batch norm; D's
  dense has none (nobias=True), nor the embedding.

A 1x1 convolution commutes with nearest upsampling and with average pooling, so G's
shortcuts convolve before upsampling and D's down block's shortcut pools before it
convolves: the same function as the reference's order, on 4x fewer pixels.

Normalization, norm=paper: batch norm in G, spectral norm in D. A weight kind (spectral,
weight) reparametrizes every conv and dense layer of the network; a layer kind goes where
G's batch norms are (before each activation in a block, and before the last ReLU), and in D
before each activation inside a block: not on the image, so the optimized block has one,
after its first conv, and not before D's last ReLU (compare_gan's ResNet discriminator,
Kurach et al. 2019, puts its layer norms inside the blocks the same way).

Conditional (num_classes set): every norm in G's blocks is a `ConditionalNorm` (the final
norm stays unconditional, as in the reference); D ends in a `ProjectionHead`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.checks import check_int
from ganforge.errors import ConfigError
from ganforge.models.dcgan import ActLike, NormLike, check_image_size, check_input
from ganforge.nn import ActSpec, NormSpec
from ganforge.nn.conditional import ConditionalNorm, ProjectionHead, check_labels, check_num_classes
from ganforge.nn.init import xavier_uniform

__all__ = ["ResNetGenerator", "ResNetDiscriminator", "UpBlock", "DownBlock", "OptimizedDownBlock"]

PAPER_G_NORM = NormSpec("batch")
PAPER_D_NORM = NormSpec("spectral")
PAPER_G_ACT = ActSpec("relu")
PAPER_D_ACT = ActSpec("relu")
RESIDUAL_GAIN = math.sqrt(2)


def conv(norm: NormSpec, in_channels: int, out_channels: int, kernel: int, gain: float) -> nn.Module:
    """A size-keeping conv (stride 1, padding kernel // 2) with a bias, Glorot-initialized."""
    return norm.wrap(xavier_uniform(nn.Conv2d(in_channels, out_channels, kernel, 1, kernel // 2), gain))


def norm_layer(norm: NormSpec, channels: int, num_classes: int | None) -> nn.Module:
    return ConditionalNorm(norm, channels, num_classes) if num_classes is not None else norm.layer(channels)


def apply_norm(layer: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    return layer(x, labels) if isinstance(layer, ConditionalNorm) else layer(x)


class UpBlock(nn.Module):
    """G's residual block: (N, in, H, W) -> (N, out, 2H, 2W) (or H, W without `upsample`)."""

    def __init__(self, in_channels: int, out_channels: int, norm: NormSpec, act: ActSpec,
                 num_classes: int | None = None, upsample: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.norm1 = norm_layer(norm, in_channels, num_classes)
        self.conv1 = conv(norm, in_channels, out_channels, 3, RESIDUAL_GAIN)
        self.norm2 = norm_layer(norm, out_channels, num_classes)
        self.conv2 = conv(norm, out_channels, out_channels, 3, RESIDUAL_GAIN)
        self.act = act.layer()
        learnable = in_channels != out_channels or upsample
        self.shortcut = conv(norm, in_channels, out_channels, 1, 1.0) if learnable else None

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.act(apply_norm(self.norm1, x, labels))
        h = self.conv1(self._up(h))
        h = self.conv2(self.act(apply_norm(self.norm2, h, labels)))
        skip = self._up(self.shortcut(x) if self.shortcut is not None else x)
        return h + skip


class DownBlock(nn.Module):
    """D's residual block: (N, in, H, W) -> (N, out, H/2, W/2) (or H, W without `downsample`)."""

    def __init__(self, in_channels: int, out_channels: int, norm: NormSpec, act: ActSpec,
                 downsample: bool = True) -> None:
        super().__init__()
        self.downsample = downsample
        self.norm1 = norm.layer(in_channels)
        self.conv1 = conv(norm, in_channels, in_channels, 3, RESIDUAL_GAIN)  # hidden = in, as in the reference
        self.norm2 = norm.layer(in_channels)
        self.conv2 = conv(norm, in_channels, out_channels, 3, RESIDUAL_GAIN)
        self.act = act.layer()
        learnable = in_channels != out_channels or downsample
        self.shortcut = conv(norm, in_channels, out_channels, 1, 1.0) if learnable else None

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = self._down(self.conv2(self.act(self.norm2(h))))
        skip = self._down(x)
        return h + (self.shortcut(skip) if self.shortcut is not None else skip)


class OptimizedDownBlock(nn.Module):
    """D's first block: conv3x3 -> act -> conv3x3 -> avg pool, plus avg pool -> conv1x1.
    (N, in, H, W) -> (N, out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int, norm: NormSpec, act: ActSpec) -> None:
        super().__init__()
        self.conv1 = conv(norm, in_channels, out_channels, 3, RESIDUAL_GAIN)
        self.norm = norm.layer(out_channels)
        self.conv2 = conv(norm, out_channels, out_channels, 3, RESIDUAL_GAIN)
        self.act = act.layer()
        self.shortcut = conv(norm, in_channels, out_channels, 1, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.conv2(self.act(self.norm(self.conv1(x)))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class ResNetGenerator(nn.Module):
    """SN-GAN ResNet generator (Miyato et al. 2018, Table 4 (a)).

    forward(z (N, z_dim), labels (N,) int64 or None) -> (N, out_channels, S, S) in [-1, 1],
    S = image_size (32 in the paper; any multiple of 8 from 16: the dense map is S/8 wide).
    """

    def __init__(self, z_dim: int = 128, image_size: int = 32, out_channels: int = 3, channels: int = 256,
                 num_classes: int | None = None, norm: NormLike = None, act: ActLike = None) -> None:
        super().__init__()
        self.z_dim = check_int("model.generator.z_dim", z_dim, 1)
        self.image_size = check_image_size("model.generator.image_size", image_size)
        self.out_channels = check_int("model.generator.out_channels", out_channels, 1)
        self.channels = check_int("model.generator.channels", channels, 1)
        self.num_classes = check_num_classes("model.generator.num_classes", num_classes)
        norm, act = NormSpec.from_config(norm, PAPER_G_NORM), ActSpec.from_config(act, PAPER_G_ACT)
        self.bottom = image_size // 8
        self.dense = norm.wrap(xavier_uniform(nn.Linear(z_dim, channels * self.bottom**2)))
        self.blocks = nn.ModuleList(UpBlock(channels, channels, norm, act, self.num_classes) for _ in range(3))
        self.norm = norm.layer(channels)
        self.act = act.layer()
        self.out = conv(norm, channels, out_channels, 3, 1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ConfigError(f"the generator takes z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        check_labels(labels, self.num_classes, z.shape[0], "the generator")
        h = self.dense(z).view(z.shape[0], self.channels, self.bottom, self.bottom)
        for block in self.blocks:
            h = block(h, labels)
        return torch.tanh(self.out(self.act(self.norm(h))))


class ResNetDiscriminator(nn.Module):
    """SN-GAN ResNet discriminator (Miyato et al. 2018, Table 4 (b)); with num_classes the
    projection discriminator of Miyato & Koyama 2018.

    forward(x (N, in_channels, S, S), labels (N,) int64 or None) -> (N,) logits.
    h = sum over pixels of ReLU(blocks(x)), (N, channels); logit = dense(h) [+ <V[y], h>].
    """

    def __init__(self, image_size: int = 32, in_channels: int = 3, channels: int = 128,
                 num_classes: int | None = None, norm: NormLike = None, act: ActLike = None) -> None:
        super().__init__()
        self.image_size = check_image_size("model.discriminator.image_size", image_size)
        self.in_channels = check_int("model.discriminator.in_channels", in_channels, 1)
        self.channels = check_int("model.discriminator.channels", channels, 1)
        self.num_classes = check_num_classes("model.discriminator.num_classes", num_classes)
        norm, act = NormSpec.from_config(norm, PAPER_D_NORM), ActSpec.from_config(act, PAPER_D_ACT)
        self.blocks = nn.Sequential(
            OptimizedDownBlock(in_channels, channels, norm, act),
            DownBlock(channels, channels, norm, act, downsample=True),
            DownBlock(channels, channels, norm, act, downsample=False),
            DownBlock(channels, channels, norm, act, downsample=False),
        )
        self.act = act.layer()
        self.head = ProjectionHead(channels, self.num_classes, norm, bias=False)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        check_input("the discriminator", x, self.in_channels, self.image_size)
        check_labels(labels, self.num_classes, x.shape[0], "the discriminator")
        return self.head(self.act(self.blocks(x)).sum(dim=(2, 3)), labels)
