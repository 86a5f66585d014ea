"""The pix2pix PatchGAN discriminator (Isola et al., CVPR 2017, appendix 6.1.2)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ganforge.checks import check_int
from ganforge.nn import ActSpec, NormSpec, init_gan_weights

__all__ = ["PatchDiscriminator"]

PAPER_ACT = ActSpec("lrelu", slope=0.2)

# The paper's normalization (norm=paper): batch norm.
PAPER_NORM = NormSpec("batch")


class PatchDiscriminator(nn.Module):
    """A fully convolutional classifier of overlapping patches.

    `n_layers` stride-2 4x4 convolutions (ndf * 1, 2, 4, .. up to 8x), one stride-1 with
    ndf * min(2**n_layers, 8) channels, then a stride-1 convolution to one logit per
    patch. n_layers=3, ndf=64 is the 70x70 PatchGAN: (N, C, 256, 256) -> (N, 1, 30, 30),
    2.77 M parameters for C=6. The first layer has no normalization, as in the reference.

    `forward` returns the logit map; `features` returns every block's output, the last
    being the logit map (used for feature matching).
    """

    def __init__(
        self,
        in_channels: int = 6,
        ndf: int = 64,
        n_layers: int = 3,
        norm: NormSpec | Mapping[str, Any] | str | None = None,
        act: ActSpec | Mapping[str, Any] | str | None = None,
    ) -> None:
        super().__init__()
        for name, value, low in (("in_channels", in_channels, 1), ("ndf", ndf, 1), ("n_layers", n_layers, 1)):
            check_int(f"model.discriminator.{name}", value, low)
        norm = NormSpec.from_config(norm, PAPER_NORM)
        act = ActSpec.from_config(act, PAPER_ACT)
        widths = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
        blocks = [nn.Sequential(norm.wrap(nn.Conv2d(in_channels, ndf, 4, 2, 1)), act.layer())]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            conv = nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=norm.conv_bias)
            blocks.append(nn.Sequential(norm.wrap(conv), norm.layer(widths[i]), act.layer()))
        blocks.append(nn.Sequential(norm.wrap(nn.Conv2d(widths[-1], 1, 4, 1, 1))))
        self.blocks = nn.ModuleList(blocks)
        init_gan_weights(self)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x
