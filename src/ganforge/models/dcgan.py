"""SNDCGAN: the "standard CNN" of Miyato, Kataoka, Koyama, Yoshida, "Spectral
Normalization for Generative Adversarial Networks", ICLR 2018, Table 3 (also the SNDCGAN
of Kurach et al., "A Large-Scale Study on Regularization and Normalization in GANs", ICML
2019, and compare_gan).

    G: z (128) -> dense -> (512, S/8, S/8) -> norm, ReLU
       -> 3 x [deconv 4x4 stride 2 -> norm -> ReLU]: 256, 128, 64 channels, S x S
       -> conv 3x3 stride 1 -> out_channels -> tanh
    D: conv3x3 s1 64, conv4x4 s2 64, conv3x3 s1 128, conv4x4 s2 128, conv3x3 s1 256,
       conv4x4 s2 256, conv3x3 s1 512, LeakyReLU 0.1 after each -> dense -> 1

Channel counts scale with `base_channels` (G: 512, D: 64 in the paper). Normalization,
norm=paper: batch norm in G, spectral norm in D. Where the layers go for the other kinds:

* G: a layer kind (batch, instance, layer, pixel) after the dense layer and after each
  deconvolution, as batch norm is in the paper; a weight kind (spectral, weight) on every
  convolution and the dense layer.
* D: a weight kind on every convolution and the dense layer (the paper's SN-DCGAN); a
  layer kind after every convolution but the first, as Miyato's BN discriminator
  (chainer-gan-lib's DCGANDiscriminator: no norm after c0_0) and compare_gan's DCGAN
  discriminator do, and Radford et al. (ICLR 2016, sec. 3) advise: no normalization at
  the discriminator's input layer. (compare_gan's SNDCGAN itself offers only spectral or none.)

Deviations from the references, on purpose: the norm after G's dense layer is per channel
of the (512, S/8, S/8) map (the references normalize each of the 512 (S/8)^2 features of
the flat vector): this lets every kind, and the class-conditional norm, act on a feature
map, and it saves 2 * 512 * ((S/8)^2 - 1) parameters (15 360 at S = 32). Every conv and
dense layer keeps its bias, as in the references, even the deconvolutions' before batch
norm, which cancels them (they get no gradient). Initialization: N(0, 0.02) weights, zero biases (as
chainer-gan-lib and compare_gan), batch-norm scales N(1, 0.02) (Radford et al.).

D's widths are Table 3's (64, 64, 128, 128, 256, 256, 512). The public code differs:
chainer-gan-lib's DCGANDiscriminator and compare_gan's SNDCGAN use 64, 128, 128, 256, 256,
512, 512 (each stride-2 conv doubles the channels), about twice the parameters.

Conditional (num_classes set): G's norms are `ConditionalNorm`s; D ends in a
`ProjectionHead` on the flattened features the dense layer sees.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ganforge.checks import check_choice, check_int
from ganforge.errors import ConfigError
from ganforge.nn import ActSpec, NormSpec, init_gan_weights
from ganforge.nn.conditional import ConditionalNorm, ProjectionHead, check_labels, check_num_classes

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "check_image_size"]

PAPER_G_NORM = NormSpec("batch")
PAPER_D_NORM = NormSpec("spectral")
PAPER_G_ACT = ActSpec("relu")
PAPER_D_ACT = ActSpec("lrelu", slope=0.1)

NormLike = NormSpec | Mapping[str, Any] | str | None
ActLike = ActSpec | Mapping[str, Any] | str | None


def check_image_size(key: str, image_size: Any) -> int:
    """image_size as an int that is a multiple of 8 and at least 16 (three halvings leave
    a map of at least 2 x 2, which instance norm needs)."""
    check_int(key, image_size, 16)
    if image_size % 8:
        raise ConfigError(f"{key} must be a multiple of 8 (the networks halve it three times), got {image_size}")
    return image_size


def check_channels(key: str, value: Any, multiple: int = 1) -> int:
    check_int(key, value, multiple)
    if value % multiple:
        raise ConfigError(f"{key} must be a multiple of {multiple}, got {value}")
    return value


def check_input(name: str, x: torch.Tensor, channels: int, image_size: int) -> None:
    if x.dim() != 4 or x.shape[1] != channels or x.shape[-2:] != (image_size, image_size):
        raise ConfigError(
            f"{name} takes (N, {channels}, {image_size}, {image_size}) images, got {tuple(x.shape)}: "
            "make the data's channels and image size match the model's"
        )


class _NormAct(nn.Module):
    """norm (conditional or not) -> act, the one place where labels enter G's layers."""

    def __init__(self, norm: NormSpec, channels: int, num_classes: int | None, act: ActSpec) -> None:
        super().__init__()
        self.conditional = num_classes is not None
        self.norm = ConditionalNorm(norm, channels, num_classes) if self.conditional else norm.layer(channels)
        self.act = act.layer()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.act(self.norm(x, labels) if self.conditional else self.norm(x))


class DCGANGenerator(nn.Module):
    """SNDCGAN generator (Miyato et al. 2018, Table 3 (a)).

    forward(z (N, z_dim), labels (N,) int64 or None) -> (N, out_channels, S, S) in [-1, 1].
    S = image_size, a multiple of 8 (32 for CIFAR-10, 48 for STL-10, 64 ...).
    base_channels: the dense layer's map channels (512), halved by each deconvolution.
    """

    def __init__(self, z_dim: int = 128, image_size: int = 32, out_channels: int = 3, base_channels: int = 512,
                 num_classes: int | None = None, norm: NormLike = None, act: ActLike = None) -> None:
        super().__init__()
        self.z_dim = check_int("model.generator.z_dim", z_dim, 1)
        self.image_size = check_image_size("model.generator.image_size", image_size)
        self.out_channels = check_int("model.generator.out_channels", out_channels, 1)
        check_channels("model.generator.base_channels", base_channels, 8)
        self.num_classes = check_num_classes("model.generator.num_classes", num_classes)
        norm, act = NormSpec.from_config(norm, PAPER_G_NORM), ActSpec.from_config(act, PAPER_G_ACT)
        self.bottom = image_size // 8
        self.base_channels = base_channels
        widths = [base_channels // 2**i for i in range(4)]  # 512, 256, 128, 64
        self.dense = norm.wrap(nn.Linear(z_dim, base_channels * self.bottom**2))
        self.dense_norm = _NormAct(norm, base_channels, self.num_classes, act)
        self.deconvs = nn.ModuleList(norm.wrap(nn.ConvTranspose2d(a, b, 4, 2, 1)) for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(_NormAct(norm, b, self.num_classes, act) for b in widths[1:])
        self.out = norm.wrap(nn.Conv2d(widths[-1], out_channels, 3, 1, 1))
        init_gan_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ConfigError(f"the generator takes z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        check_labels(labels, self.num_classes, z.shape[0], "the generator")
        h = self.dense(z).view(z.shape[0], self.base_channels, self.bottom, self.bottom)
        h = self.dense_norm(h, labels)
        for deconv, norm_act in zip(self.deconvs, self.norms):
            h = norm_act(deconv(h), labels)
        return torch.tanh(self.out(h))


class DCGANDiscriminator(nn.Module):
    """SNDCGAN discriminator (Miyato et al. 2018, Table 3 (b)).

    forward(x (N, in_channels, S, S), labels (N,) int64 or None) -> (N,) logits.
    base_channels: the first convolutions' channels (64); the pairs that follow have 2x
    and 4x as many, the last conv 8x. The dense layer (or projection head) sees the
    flattened (8 * base_channels, S/8, S/8) map.
    layout: "table3", the paper's widths (64, 64, 128, 128, 256, 256, 512), or
        "compare_gan", the public code's (64, 128, 128, 256, 256, 512, 512: each stride-2
        conv doubles the channels), which Kurach et al. 2019 trained.
    """

    LAYOUTS = ("table3", "compare_gan")

    def __init__(self, image_size: int = 32, in_channels: int = 3, base_channels: int = 64,
                 num_classes: int | None = None, norm: NormLike = None, act: ActLike = None,
                 layout: str = "table3") -> None:
        super().__init__()
        check_choice("model.discriminator.layout", layout, self.LAYOUTS)
        self.image_size = check_image_size("model.discriminator.image_size", image_size)
        self.in_channels = check_int("model.discriminator.in_channels", in_channels, 1)
        check_channels("model.discriminator.base_channels", base_channels)
        self.num_classes = check_num_classes("model.discriminator.num_classes", num_classes)
        norm, act = NormSpec.from_config(norm, PAPER_D_NORM), ActSpec.from_config(act, PAPER_D_ACT)
        b = base_channels
        # (out channels, kernel, stride) per conv, from Table 3 (b).
        plan = [(b, 3, 1), (b, 4, 2), (2 * b, 3, 1), (2 * b, 4, 2), (4 * b, 3, 1), (4 * b, 4, 2), (8 * b, 3, 1)]
        if layout == "compare_gan":
            plan = [(b, 3, 1), (2 * b, 4, 2), (2 * b, 3, 1), (4 * b, 4, 2), (4 * b, 3, 1), (8 * b, 4, 2), (8 * b, 3, 1)]
        layers: list[nn.Module] = []
        source = in_channels
        for i, (width, kernel, stride) in enumerate(plan):
            layers.append(norm.wrap(nn.Conv2d(source, width, kernel, stride, 1)))
            if i > 0:  # no layer norm at the input layer (see the module docstring)
                layers.append(norm.layer(width))
            layers.append(act.layer())
            source = width
        self.features = nn.Sequential(*layers)
        self.head = ProjectionHead(8 * b * (image_size // 8) ** 2, self.num_classes, norm)
        init_gan_weights(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        check_input("the discriminator", x, self.in_channels, self.image_size)
        check_labels(labels, self.num_classes, x.shape[0], "the discriminator")
        return self.head(self.features(x).flatten(1), labels)
