"""LightningModules: the alternating GAN loop and the model families built on it."""

from ganforge.tasks.gan import Example, GANTask, network_part
from ganforge.tasks.pix2pix import Pix2PixTask

__all__ = ["Example", "GANTask", "network_part", "Pix2PixTask"]
