"""Networks as plain nn.Modules: no Lightning, no Hydra."""

from ganforge.models.patchgan import PatchDiscriminator
from ganforge.models.unet import UNetGenerator

__all__ = ["PatchDiscriminator", "UNetGenerator"]
