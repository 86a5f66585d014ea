"""pix2pix (Isola et al., CVPR 2017): a U-Net generator and a conditional PatchGAN,
trained with an adversarial loss plus lambda_L1 * L1 to the target.

Two settings, chosen by the data's `kind`:
* "images" (the bundled photos, a folder of photos): Lab colorization. The generator
  sees L / 50 - 1, (N, 1, H, W), and predicts ab / 110, (N, 2, H, W).
* "pairs" (the aligned A|B format): RGB translation from input to target, both scaled
  to [-1, 1], (N, 3, H, W).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torchmetrics.image import PeakSignalNoiseRatio

from ganforge.checks import check_choice, check_number
from ganforge.data.color import lab_to_network, lab_to_rgb, network_to_lab, rgb_to_lab
from ganforge.errors import ConfigError
from ganforge.models import PatchDiscriminator, UNetGenerator
from ganforge.tasks.gan import Example, GANTask, network_part
from ganforge.tasks.registry import register_family

__all__ = ["Pix2PixTask"]


def _split_parts(network: Mapping[str, Any] | None, norm: Any, act: Any) -> tuple[dict, Any, Any]:
    options = dict(network or {})
    return options, network_part(norm, options.pop("norm", None)), network_part(act, options.pop("act", None))


@register_family("pix2pix", trained_by="model=pix2pix or model=pix2pix_small")
class Pix2PixTask(GANTask):
    """pix2pix as a Lightning task. `generator` and `discriminator` hold the options of
    `UNetGenerator` and `PatchDiscriminator` (without channel counts, which follow from
    `data_kind`), each with an optional own `norm` and `act` over the shared groups."""

    def __init__(
        self,
        data_kind: str = "images",
        generator: Mapping[str, Any] | None = None,
        discriminator: Mapping[str, Any] | None = None,
        norm: Any = "batch",
        act: Any = None,
        lambda_l1: float = 100.0,
        **gan: Any,
    ) -> None:
        super().__init__(**gan)
        self.save_hyperparameters()
        self.data_kind = check_choice("model.data_kind", data_kind, ("images", "pairs"))
        self.lambda_l1 = check_number("model.lambda_l1", lambda_l1, 0)
        in_channels, out_channels = (1, 2) if data_kind == "images" else (3, 3)
        g_options, g_norm, g_act = _split_parts(generator, norm, act)
        d_options, d_norm, d_act = _split_parts(discriminator, norm, act)
        for key in ("in_channels", "out_channels"):
            if key in g_options or key in d_options:
                raise ConfigError(f"model.*.{key} is set by the data (data.kind={data_kind}): remove it")
        try:
            self.generator = UNetGenerator(in_channels, out_channels, norm=g_norm, act=g_act, **g_options)
            self.discriminator = PatchDiscriminator(in_channels + out_channels, norm=d_norm, act=d_act, **d_options)
        except TypeError as error:
            raise ConfigError(f"unknown option in model.generator or model.discriminator: {error}") from None
        self.gray_psnr = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))

    def prepare(self, batch: Mapping[str, torch.Tensor]) -> Example:
        if self.data_kind == "images":
            if "image" not in batch:
                raise ConfigError("this pix2pix model colorizes single images, but the data gives pairs: "
                                  "use data=sample or data=folder")
            lightness, ab = lab_to_network(rgb_to_lab(batch["image"]))
            return Example(condition=lightness, real=ab)
        if "input" not in batch:
            raise ConfigError("this pix2pix model translates pairs, but the data gives single images: use data=paired")
        return Example(condition=batch["input"] * 2 - 1, real=batch["target"] * 2 - 1)

    def generate(self, example: Example, generator: torch.nn.Module) -> torch.Tensor:
        return generator(example.condition)

    def discriminate(self, example: Example, image: torch.Tensor, discriminator: torch.nn.Module) -> torch.Tensor:
        return discriminator(torch.cat([example.condition, image], dim=1))

    @property
    def multiple(self) -> int:
        return self.generator.multiple

    def generator_losses(self, example: Example, fake: torch.Tensor, d_fake, d_real) -> dict[str, torch.Tensor]:
        if self.lambda_l1 == 0:
            return {}
        return {"l1": self.lambda_l1 * F.l1_loss(fake, example.real)}

    def to_rgb(self, example: Example, image: torch.Tensor) -> torch.Tensor:
        if self.data_kind == "images":
            return lab_to_rgb(network_to_lab(example.condition, image.float()))
        return ((image.float() + 1) / 2).clamp(0, 1)

    def batch_from_images(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.data_kind == "images":
            return {"image": rgb}
        return {"input": rgb, "target": rgb}  # the target is not used when only predicting

    def condition_rgb(self, example: Example) -> torch.Tensor:
        if self.data_kind == "images":
            return ((example.condition + 1) / 2).clamp(0, 1).expand(-1, 3, -1, -1)
        return ((example.condition + 1) / 2).clamp(0, 1)

    def extra_validation(self, example: Example, fake_rgb: torch.Tensor, real_rgb: torch.Tensor) -> None:
        # For colorization, the grey picture (ab = 0) is the bar a useful model must clear.
        if self.data_kind == "images":
            grey = self.to_rgb(example, torch.zeros_like(example.real))[..., : real_rgb.shape[-2], : real_rgb.shape[-1]]
            self.gray_psnr.update(grey, real_rgb)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.data_kind == "images":
            self.log("val/psnr_gray", self.gray_psnr.compute())
            self.gray_psnr.reset()
