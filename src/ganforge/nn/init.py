"""Weight initialization shared by the networks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["init_gan_weights"]


def init_gan_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN / pix2pix initialization: conv and linear weights ~ N(0, std), biases 0,
    batch-norm scales ~ N(1, std) and shifts 0 (Radford et al., ICLR 2016, sec. 4).

    Spectrally normalized layers get their underlying (original) weight initialized;
    weight-normalized ones their direction v, with the length g set to |v| so that the
    effective weight starts as the same draw. Returns `module` for chaining.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
            if parametrize.is_parametrized(layer, "weight"):
                parametrization = layer.parametrizations.weight
                if hasattr(parametrization, "original"):  # spectral norm
                    nn.init.normal_(parametrization.original, 0.0, std)
                else:  # weight norm: original0 = g (length), original1 = v (direction)
                    g, v = parametrization.original0, parametrization.original1
                    nn.init.normal_(v, 0.0, std)
                    with torch.no_grad():
                        dims = [i for i in range(v.dim()) if g.shape[i] == 1]
                        g.copy_(torch.linalg.vector_norm(v, dim=dims, keepdim=True))
            else:
                nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine:
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
    return module
