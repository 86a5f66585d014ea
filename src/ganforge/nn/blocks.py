"""Convolution blocks shared by the compression networks."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.nn.act import ActSpec
from ganforge.nn.norm import NormSpec

__all__ = ["conv_norm_act", "ResidualBlock"]


def conv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    norm: NormSpec,
    act: ActSpec | None,
    stride: int = 1,
    reflect: bool = True,
    transposed: bool = False,
) -> nn.Sequential:
    """[reflect pad] -> conv (or transposed conv, 2x up) -> norm -> act.

    Stride-1 convolutions keep the size with reflection padding (as the compression
    networks of Agustsson et al. do); stride-2 ones use zero padding k // 2, so a stride-2
    conv halves even sides and a transposed one doubles them. act None: no activation.
    """
    pad = kernel_size // 2
    layers: list[nn.Module] = []
    if transposed:
        conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, pad, output_padding=stride - 1,
                                  bias=norm.conv_bias)
    elif stride == 1 and reflect and pad > 0:
        layers.append(nn.ReflectionPad2d(pad))
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, 0, bias=norm.conv_bias)
    else:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad, bias=norm.conv_bias)
    layers += [norm.wrap(conv), norm.layer(out_channels)]
    if act is not None:
        layers.append(act.layer())
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """x + (conv3 -> norm -> act -> conv3 -> norm)(x), reflection padded; (N, C, H, W) -> same."""

    def __init__(self, channels: int, norm: NormSpec, act: ActSpec) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, channels, 3, norm, act),
            conv_norm_act(channels, channels, 3, norm, None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
