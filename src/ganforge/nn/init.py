"""Weight initialization shared by the networks."""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

__all__ = ["init_gan_weights"]


def init_gan_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN / pix2pix initialization: conv and linear weights ~ N(0, std), biases 0,
    batch-norm scales ~ N(1, std) and shifts 0 (Radford et al., ICLR 2016, sec. 4).

    Spectrally normalized layers get their underlying (original) weight initialized.
    Returns `module` for chaining.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
            if parametrize.is_parametrized(layer, "weight"):
                weight = layer.parametrizations.weight.original
            else:
                weight = layer.weight
            nn.init.normal_(weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine:
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
    return module
