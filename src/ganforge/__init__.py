"""ganforge: a PyTorch Lightning + Hydra framework for GAN research."""

__version__ = "0.1.0"
