"""LightningModules: the alternating GAN loop and the model families built on it."""

from ganforge.tasks.compression import CompressionTask
from ganforge.tasks.gan import Example, GANTask, network_part, pad_to_multiple
from ganforge.tasks.pix2pix import Pix2PixTask

__all__ = ["CompressionTask", "Example", "GANTask", "network_part", "pad_to_multiple", "Pix2PixTask"]
