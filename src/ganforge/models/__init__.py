"""Networks as plain nn.Modules: no Lightning, no Hydra."""

from ganforge.models.compression import (
    CompressionEncoder,
    CompressionGenerator,
    GenerativeCompression,
    MultiScaleDiscriminator,
    NoiseGenerator,
)
from ganforge.models.patchgan import PatchDiscriminator
from ganforge.models.unet import UNetGenerator

__all__ = [
    "CompressionEncoder",
    "CompressionGenerator",
    "GenerativeCompression",
    "MultiScaleDiscriminator",
    "NoiseGenerator",
    "PatchDiscriminator",
    "UNetGenerator",
]
