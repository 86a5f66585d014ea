"""Weight initialization shared by the networks."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["init_gan_weights", "init_weight", "xavier_uniform"]


def init_weight(layer: nn.Module, fill: Callable[[torch.Tensor], object]) -> nn.Module:
    """Draw `layer`'s weight with `fill` (an in-place torch.nn.init function) and zero its
    bias, whether or not the weight is reparametrized.

    Spectrally normalized layers get their underlying (original) weight drawn; weight-
    normalized ones their direction v, with the length g set to |v| so that the effective
    weight starts as the same draw. Returns `layer`.
    """
    if parametrize.is_parametrized(layer, "weight"):
        parametrization = layer.parametrizations.weight
        if hasattr(parametrization, "original"):  # spectral norm
            fill(parametrization.original)
        else:  # weight norm: original0 = g (length), original1 = v (direction)
            g, v = parametrization.original0, parametrization.original1
            fill(v)
            with torch.no_grad():
                dims = [i for i in range(v.dim()) if g.shape[i] == 1]
                g.copy_(torch.linalg.vector_norm(v, dim=dims, keepdim=True))
    else:
        fill(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


def xavier_uniform(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """Glorot & Bengio (2010) uniform init of a conv, linear or embedding weight:
    U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (chainer's GlorotUniform(scale=gain),
    torch's xavier_uniform_), bias 0. Returns `layer`."""
    return init_weight(layer, lambda weight: nn.init.xavier_uniform_(weight, gain))


def init_gan_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN / pix2pix initialization: conv and linear weights ~ N(0, std), biases 0,
    batch-norm scales ~ N(1, std) and shifts 0 (Radford et al., ICLR 2016, sec. 4).

    Reparametrized (spectral, weight) layers are handled as `init_weight` says.
    Embeddings are left as they are. Returns `module` for chaining.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
            init_weight(layer, lambda weight: nn.init.normal_(weight, 0.0, std))
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine:
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
    return module
