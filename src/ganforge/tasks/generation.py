"""Image generation from noise: z -> G -> image, D(image), unconditional or class-conditional.

Two architectures from Miyato et al., "Spectral Normalization for GANs" (ICLR 2018), also
the two of Kurach et al. 2019's study: the standard CNN "SNDCGAN" (`architecture: dcgan`)
and the CIFAR-10 ResNet (`architecture: resnet`). Conditional models put class-conditional
batch norm in G and a projection discriminator (Miyato & Koyama, ICLR 2018) as D's head.

Validation has no target to compare with: a validation batch is a batch of the fixed
reference set (real images), and the model makes one sample per reference image, from a
latent code keyed by the image's index (and, for a conditional model,
with the reference image's label). `ganforge.quality.GenerationMetrics` scores them (FID,
KID, IS, precision/recall) from the outputs of `validation_step`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ganforge.checks import check_bool, check_choice, check_int
from ganforge.errors import ConfigError
from ganforge.models import DCGANDiscriminator, DCGANGenerator, ResNetDiscriminator, ResNetGenerator
from ganforge.tasks.examples import Example, network_part
from ganforge.tasks.gan import GANTask
from ganforge.tasks.registry import register_family

__all__ = ["ARCHITECTURES", "GenerationTask", "latent_codes"]

# architecture -> (generator class, discriminator class)
ARCHITECTURES = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ResNetDiscriminator),
}


def latent_codes(keys: torch.Tensor, z_dim: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """One standard normal code (z_dim,) per integer key, the same for a key whatever the
    batch, process or machine: sample i of a validation, of a sample grid or of predict
    is drawn from (seed, i). Returns (N, z_dim) float32."""
    codes = torch.empty(len(keys), z_dim)
    for row, key in enumerate(keys.tolist()):
        state = int(np.random.SeedSequence((int(seed), int(key))).generate_state(1, np.uint64)[0] >> 1)
        codes[row] = torch.randn(z_dim, generator=torch.Generator().manual_seed(state))
    return codes.to(device)


# The codes of validation samples and sample grids: the same in every run and every
# evaluation, whatever its seed, so that eval.py reproduces the numbers a run logged and
# the runs of a sweep over seeds are scored on the same codes.
FIXED_CODES_SEED = 0


@register_family("generation", trained_by="model=dcgan or model=sngan (and their _cond presets)")
class GenerationTask(GANTask):
    """Generation from noise on the shared loop.

    architecture: dcgan (SNDCGAN) or resnet (SNGAN's ResNet).
    image_size, image_channels: the images' side and channels (the data's: 32 and 1 for
        the grey digits, 32 and 3 for CIFAR-10).
    z_dim: the latent code's size (128 in both papers).
    conditional: G and D see the class label; needs data with labels (`num_classes`).
    num_classes: the data's class count (train.py fills it in from the data).
    generator, discriminator: the networks' own options (widths) and their own norm/act
        over the shared groups.
    """

    reconstructs = False

    def __init__(
        self,
        architecture: str = "dcgan",
        image_size: int = 32,
        image_channels: int = 3,
        z_dim: int = 128,
        conditional: bool = False,
        num_classes: int | None = None,
        generator: Mapping[str, Any] | None = None,
        discriminator: Mapping[str, Any] | None = None,
        norm: Any = "paper",
        act: Any = None,
        **gan: Any,
    ) -> None:
        super().__init__(**gan)
        self.save_hyperparameters()
        self.architecture = check_choice("model.architecture", architecture, tuple(ARCHITECTURES))
        self.image_size = check_int("model.image_size", image_size, 8)
        self.image_channels = check_int("model.image_channels", image_channels, 1)
        if self.image_channels not in (1, 3):
            raise ConfigError(f"model.image_channels must be 1 (grey) or 3 (RGB), got {image_channels}")
        self.z_dim = check_int("model.z_dim", z_dim, 1)
        self.conditional = check_bool("model.conditional", conditional)
        if self.conditional:
            if num_classes is None:
                raise ConfigError("model.conditional=true needs data with class labels: use data=digits or "
                                  "data=class_folder data.root=DIR (one subfolder per class)")
            check_int("model.num_classes", num_classes, 2)
        self.num_classes = num_classes if self.conditional else None
        g_options, d_options = dict(generator or {}), dict(discriminator or {})
        g_norm, g_act = network_part(norm, g_options.pop("norm", None)), network_part(act, g_options.pop("act", None))
        d_norm, d_act = network_part(norm, d_options.pop("norm", None)), network_part(act, d_options.pop("act", None))
        generator_class, discriminator_class = ARCHITECTURES[self.architecture]
        try:
            self.generator = generator_class(z_dim=self.z_dim, image_size=self.image_size,
                                             out_channels=self.image_channels, num_classes=self.num_classes,
                                             norm=g_norm, act=g_act, **g_options)
            self.discriminator = discriminator_class(image_size=self.image_size, in_channels=self.image_channels,
                                                     num_classes=self.num_classes, norm=d_norm, act=d_act,
                                                     **d_options)
        except TypeError as error:
            raise ConfigError(f"unknown option in model.generator or model.discriminator: {error}") from None

    # ---- the family contract ------------------------------------------------------------

    def prepare(self, batch: Mapping[str, torch.Tensor]) -> Example:
        if "image" not in batch:
            raise ConfigError("image generation trains on single images: use data=digits, data=class_folder, "
                              "data=folder or data=sample")
        image = batch["image"]
        if image.shape[1] != self.image_channels:
            raise ConfigError(f"the data's images have {image.shape[1]} channel(s), the model makes "
                              f"{self.image_channels}: set data.channels (or model.image_channels) to match")
        if tuple(image.shape[-2:]) != (self.image_size, self.image_size):
            raise ConfigError(f"the data's images are {tuple(image.shape[-2:])}, the model makes "
                              f"{self.image_size}x{self.image_size}: set data.image_size={self.image_size} "
                              f"(or model.image_size)")
        labels = None
        if self.conditional:
            labels = batch.get("label")
            if labels is None:
                raise ConfigError("model.conditional=true needs data with class labels: use data=digits or "
                                  "data=class_folder data.root=DIR")
        extras = {"index": batch["index"]} if "index" in batch else {}
        return Example(condition=labels, real=image * 2 - 1, extras=extras)

    def generate(self, example: Example, generator: nn.Module) -> torch.Tensor:
        z = example.extras.get("z")
        if z is None:  # training: from torch's generator, re-seeded before every batch
            z = torch.randn(example.real.shape[0], self.z_dim, device=example.real.device)
        return generator(z.to(example.real.dtype), example.condition)

    def discriminate(self, example: Example, image: torch.Tensor, discriminator: nn.Module) -> torch.Tensor:
        return discriminator(image, example.condition)

    def to_rgb(self, example: Example | None, image: torch.Tensor) -> torch.Tensor:
        rgb = ((image.float() + 1) / 2).clamp(0, 1)
        return rgb.expand(-1, 3, -1, -1) if rgb.shape[1] == 1 else rgb

    # ---- validation: one sample per reference image ---------------------------------------

    def validation_images(self, batch: Mapping[str, torch.Tensor]) -> tuple[Example, torch.Tensor, torch.Tensor]:
        example = self.prepare(batch)
        index = example.extras.get("index")
        if index is None:  # a reference set without positions (not ours): key by the batch's order
            index = torch.arange(example.real.shape[0])
        example.extras["z"] = latent_codes(index.cpu(), self.z_dim, FIXED_CODES_SEED, example.real.device)
        fake = self.generate(example, self.inference_generator)
        return example, self.to_rgb(example, fake), self.to_rgb(example, example.real)

    # ---- samples and prediction ------------------------------------------------------------

    @torch.no_grad()
    def sample(self, count: int, seed: int = 0, label: int | None = None, first: int = 0,
               generator: nn.Module | None = None) -> torch.Tensor:
        """`count` samples as RGB in [0, 1], (count, 3, S, S): sample i (from `first`) from the
        latent code keyed by (seed, i), of class `label` for a conditional model (None: the
        classes in turn, i mod num_classes)."""
        count = check_int("predict.num_samples", count, 1)
        if label is not None:
            if not self.conditional:
                raise ConfigError(f"predict.label={label} needs a class-conditional model; this one is "
                                  "unconditional: leave predict.label unset")
            if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < self.num_classes:
                raise ConfigError(f"predict.label={label!r} is not a class of this model: choose 0 .. "
                                  f"{self.num_classes - 1}")
        device = next(self.generator.parameters()).device
        keys = torch.arange(first, first + count)
        labels = None
        if self.conditional:
            labels = torch.full((count,), label, dtype=torch.long) if label is not None else keys % self.num_classes
            labels = labels.to(device)
        network = generator if generator is not None else self.inference_generator
        fake = network(latent_codes(keys, self.z_dim, seed, device), labels)
        return self.to_rgb(None, fake)

    @torch.no_grad()
    def sample_images(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rows of a sample grid from fixed codes (the same in every grid of the run): a
        conditional model shows one row per class (up to 10) with the same code in each
        column; an unconditional one four rows of different codes."""
        columns = next(iter(batch.values())).shape[0]
        device = next(self.generator.parameters()).device
        network = self.inference_generator
        if self.conditional:
            codes = latent_codes(torch.arange(columns), self.z_dim, FIXED_CODES_SEED, device)
            return {f"class {c}": self.to_rgb(None, network(codes, torch.full((columns,), c, device=device)))
                    for c in range(min(self.num_classes, 10))}
        rows = {}
        for row in range(4):
            codes = latent_codes(torch.arange(row * columns, (row + 1) * columns), self.z_dim, FIXED_CODES_SEED, device)
            rows[f"samples {row * columns}-{(row + 1) * columns - 1}"] = self.to_rgb(None, network(codes, None))
        return rows

    def translate(self, rgb: torch.Tensor, generator: nn.Module | None = None) -> torch.Tensor:
        raise ConfigError("this model generates images from noise, it does not translate photos: "
                          "python predict.py ckpt_path=... predict.num_samples=N output=DIR")
