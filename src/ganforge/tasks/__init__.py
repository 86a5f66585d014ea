"""LightningModules: the alternating GAN loop and the model families built on it."""

from ganforge.tasks.compression import CompressionTask
from ganforge.tasks.gan import Example, GANTask, network_part, pad_to_multiple
from ganforge.tasks.generation import GenerationTask
from ganforge.tasks.pix2pix import Pix2PixTask
from ganforge.tasks.registry import FAMILIES, register_family

__all__ = ["CompressionTask", "Example", "FAMILIES", "GANTask", "GenerationTask", "network_part", "pad_to_multiple",
           "Pix2PixTask",
           "register_family"]
