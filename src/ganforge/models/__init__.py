"""Networks as plain nn.Modules: no Lightning, no Hydra."""

from ganforge.models.compression import (
    CompressionEncoder,
    CompressionGenerator,
    GenerativeCompression,
    MultiScaleDiscriminator,
    NoiseGenerator,
)
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.patchgan import PatchDiscriminator
from ganforge.models.sngan import ResNetDiscriminator, ResNetGenerator
from ganforge.models.unet import UNetGenerator

__all__ = [
    "CompressionEncoder",
    "CompressionGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "GenerativeCompression",
    "MultiScaleDiscriminator",
    "NoiseGenerator",
    "PatchDiscriminator",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "UNetGenerator",
]
