"""The pix2pix U-Net generator (Isola et al., "Image-to-Image Translation with
Conditional Adversarial Networks", CVPR 2017, appendix 6.1.1)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ganforge.checks import check_int, check_number
from ganforge.errors import ConfigError
from ganforge.nn import ActSpec, NormSpec, init_gan_weights

__all__ = ["UNetGenerator"]

# pix2pix's activations: LeakyReLU 0.2 on the way down, ReLU on the way up.
PAPER_DOWN_ACT = ActSpec("lrelu", slope=0.2)
PAPER_UP_ACT = ActSpec("relu")
# The paper's normalization (norm=paper): batch norm.
PAPER_NORM = NormSpec("batch")


class UNetGenerator(nn.Module):
    """U-Net with `num_downs` stride-2 4x4 convolutions and mirrored transposed ones.

    Level i (0 = outermost) has ngf * min(2**i, 8) channels; with num_downs=8 and
    ngf=64 this is the reference ``unet_256``: 256x256 -> 1x1 -> 256x256, 54.4 M
    parameters. Each decoder level sees its encoder twin concatenated to the level
    below. Dropout (p=`dropout`) follows the decoder levels 4 .. num_downs-2, the three
    innermost ones but the bottleneck for num_downs=8, as in the reference.

    Shape: (N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1] (tanh), where H
    and W are multiples of 2**num_downs.

    norm: a `NormSpec` or config for every level but the outermost and the bottleneck
        (which have none, as in the reference: the bottleneck is 1x1 at 256 input).
    act: one activation for both paths, or None for the paper's (LeakyReLU 0.2 down,
        ReLU up).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: NormSpec | Mapping[str, Any] | str | None = None,
        act: ActSpec | Mapping[str, Any] | str | None = None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        for name, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                 ("ngf", ngf, 1), ("num_downs", num_downs, 2)):
            check_int(f"model.generator.{name}", value, low)
        check_number("model.generator.dropout", dropout, 0, 1, open_maximum=True)
        norm = NormSpec.from_config(norm, PAPER_NORM)
        down_act = ActSpec.from_config(act, PAPER_DOWN_ACT)
        up_act = ActSpec.from_config(act, PAPER_UP_ACT)
        self.num_downs = num_downs
        width = [ngf * min(2**i, 8) for i in range(num_downs)]

        self.down = nn.ModuleList()
        for i in range(num_downs):
            source = in_channels if i == 0 else width[i - 1]
            outermost, innermost = i == 0, i == num_downs - 1
            layers: list[nn.Module] = [] if outermost else [down_act.layer()]
            # The reference gives every down convolution the norm's bias rule, even the two
            # without a norm after them; we keep that so parameter counts match.
            conv = nn.Conv2d(source, width[i], 4, 2, 1, bias=norm.conv_bias)
            layers.append(norm.wrap(conv))
            if not (outermost or innermost):
                layers.append(norm.layer(width[i]))
            self.down.append(nn.Sequential(*layers))

        self.up = nn.ModuleList()
        for i in range(num_downs):
            outermost, innermost = i == 0, i == num_downs - 1
            source = width[i] if innermost else 2 * width[i]
            target = out_channels if outermost else width[i - 1]
            conv = nn.ConvTranspose2d(source, target, 4, 2, 1, bias=norm.conv_bias or outermost)
            layers = [up_act.layer(), norm.wrap(conv)]
            if outermost:
                layers.append(nn.Tanh())
            else:
                layers.append(norm.layer(target))
                if dropout > 0 and 4 <= i <= num_downs - 2:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        init_gan_weights(self)

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ConfigError(
                f"U-Net with num_downs={self.num_downs} needs image sides that are multiples of "
                f"{self.multiple}, got {tuple(x.shape[-2:])}: change the crop size or model.generator.num_downs"
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(self.num_downs - 2, -1, -1):
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return x
