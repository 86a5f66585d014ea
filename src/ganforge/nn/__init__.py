"""Layers without Lightning or Hydra: normalization (and its class-conditional form),
activations, initialization, the projection head, DiffAugment, and the float32 regions of
mixed precision."""

from ganforge.nn.act import ACT_KINDS, ActSpec, make_act
from ganforge.nn.augment import DiffAugment, make_augment
from ganforge.nn.conditional import ConditionalNorm, ProjectionHead, check_labels
from ganforge.nn.init import init_gan_weights, xavier_uniform
from ganforge.nn.norm import NORM_KINDS, LayerNorm2d, NormSpec, PixelNorm, make_norm, spectral_sigma
from ganforge.nn.precision import without_autocast
from ganforge.nn.quantize import SoftToHardQuantizer

__all__ = [
    "ACT_KINDS",
    "ActSpec",
    "make_act",
    "ConditionalNorm",
    "ProjectionHead",
    "check_labels",
    "DiffAugment",
    "make_augment",
    "init_gan_weights",
    "xavier_uniform",
    "NORM_KINDS",
    "LayerNorm2d",
    "NormSpec",
    "PixelNorm",
    "make_norm",
    "spectral_sigma",
    "SoftToHardQuantizer",
    "without_autocast",
]
