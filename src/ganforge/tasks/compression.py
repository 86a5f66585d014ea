"""Generative compression as a Lightning task (Agustsson et al., ICCV 2019).

G's loss: adversarial + lambda_mse * MSE(x_hat, x) + lambda_fm * feature matching, where
feature matching is the L1 distance between the multiscale discriminator's intermediate
features of the real and the reconstructed image (pix2pixHD, Wang et al. 2018), averaged
over layers and scales. Images are in [-1, 1] inside the networks.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ganforge.checks import check_choice, check_int, check_number
from ganforge.errors import ConfigError
from ganforge.models.compression import DOWNSAMPLING, GenerativeCompression, MultiScaleDiscriminator
from ganforge.nn.quantize import SoftToHardQuantizer
from ganforge.tasks.gan import Example, GANTask, network_part
from ganforge.tasks.registry import register_family

__all__ = ["CompressionTask"]


@register_family("compression", trained_by="model=compression")
class CompressionTask(GANTask):
    """Encoder -> quantizer -> (noise) -> generator, against a multiscale discriminator.

    generator: options of `GenerativeCompression` (width, residual_blocks, sample_noise,
        noise_dim, noise_channels) and its own norm/act over the shared groups.
    discriminator: scales, ndf, n_layers, conditional (D also sees w_bar, upsampled), and
        its own norm/act.
    quantizer: centers, temperature, learnable.
    """

    def __init__(
        self,
        data_kind: str = "images",
        bottleneck: int = 8,
        quantizer: Mapping[str, Any] | None = None,
        generator: Mapping[str, Any] | None = None,
        discriminator: Mapping[str, Any] | None = None,
        norm: Any = "instance",
        act: Any = None,
        lambda_mse: float = 12.0,
        lambda_fm: float = 10.0,
        **gan: Any,
    ) -> None:
        super().__init__(**gan)
        self.save_hyperparameters()
        check_choice("model.data_kind", data_kind, ("images",))
        self.lambda_mse = check_number("model.lambda_mse", lambda_mse, 0)
        self.lambda_fm = check_number("model.lambda_fm", lambda_fm, 0)
        quantizer = dict(quantizer or {"centers": [-2, -1, 0, 1, 2]})
        unknown = sorted(set(quantizer) - {"centers", "temperature", "learnable"})
        if unknown:
            raise ConfigError(f"unknown quantizer option(s) {unknown}: the options are centers, temperature, learnable")
        g_options = dict(generator or {})
        g_norm, g_act = network_part(norm, g_options.pop("norm", None)), network_part(act, g_options.pop("act", None))
        d_options = dict(discriminator or {})
        d_norm, d_act = network_part(norm, d_options.pop("norm", None)), network_part(act, d_options.pop("act", None))
        self.conditional = bool(d_options.pop("conditional", False))
        bottleneck = check_int("model.bottleneck", bottleneck, 1)
        try:
            self.generator = GenerativeCompression(
                bottleneck, SoftToHardQuantizer(**quantizer), norm=g_norm, act=g_act, **g_options
            )
            d_in = 3 + (bottleneck if self.conditional else 0)
            self.discriminator = MultiScaleDiscriminator(d_in, norm=d_norm, act=d_act, **d_options)
        except TypeError as error:
            raise ConfigError(f"unknown option in model.generator or model.discriminator: {error}") from None
        # How often each channel used each center during the current training epoch, given
        # the symbol above it (index L: the first row, which has none): the entropy
        # coder's probability model (ganforge.codec), saved with the checkpoint.
        levels = self.generator.quantizer.num_centers
        self.register_buffer("symbol_counts", torch.zeros(bottleneck, levels + 1, levels, dtype=torch.long))
        self._val_symbol_counts = torch.zeros(self.generator.quantizer.num_centers, dtype=torch.long)

    @property
    def multiple(self) -> int:
        return DOWNSAMPLING

    @property
    def bpp_bound(self) -> float:
        """C * log2(L) / 16^2: the bits per pixel of the symbols coded at a fixed length."""
        return self.generator.bpp_bound

    def prepare(self, batch: Mapping[str, torch.Tensor]) -> Example:
        if "image" not in batch:
            raise ConfigError("compression needs single images: use data=sample or data=folder")
        return Example(condition=None, real=batch["image"] * 2 - 1)

    def generate(self, example: Example, generator: torch.nn.Module) -> torch.Tensor:
        side = example.real.shape[-2:]
        if side[0] % DOWNSAMPLING or side[1] % DOWNSAMPLING:
            raise ConfigError(
                f"compression needs image sides that are multiples of {DOWNSAMPLING}, got {tuple(side)}: "
                "change data.crop_size"
            )
        fake, w_bar = generator(example.real)
        example.extras["w_bar"] = w_bar
        if self.training and generator is self.trained("generator"):
            self._count_symbols(w_bar)
        return fake

    @torch.no_grad()
    def _count_symbols(self, w_bar: torch.Tensor) -> None:
        levels = self.symbol_counts.shape[2]
        symbols = self.generator.quantizer.indices(w_bar)  # w_bar holds centers exactly
        above = torch.full_like(symbols, levels)
        above[:, :, 1:] = symbols[:, :, :-1]
        channel = torch.arange(symbols.shape[1], device=symbols.device).view(1, -1, 1, 1)
        flat = ((channel * (levels + 1) + above) * levels + symbols).flatten()
        self.symbol_counts += torch.bincount(flat, minlength=self.symbol_counts.numel()).view_as(self.symbol_counts)

    def on_train_epoch_start(self) -> None:
        self.symbol_counts.zero_()

    def _sum_over_processes(self, counts: torch.Tensor) -> torch.Tensor:
        # Data parallel training: each process counted the symbols of its own share.
        if self._trainer is None or self.trainer.world_size == 1:
            return counts
        return self.trainer.strategy.reduce(counts.clone(), reduce_op="sum")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["state_dict"]["symbol_counts"] = self._sum_over_processes(self.symbol_counts)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        # The saved counts are the sum over the processes: resume them on the first only.
        state = checkpoint.get("state_dict", {})
        if self._trainer is not None and self.trainer.global_rank != 0 and "symbol_counts" in state:
            state["symbol_counts"] = torch.zeros_like(state["symbol_counts"])

    def discriminate(self, example: Example, image: torch.Tensor, discriminator: torch.nn.Module) -> list[list[torch.Tensor]]:
        if self.conditional:
            condition = F.interpolate(example.extras["w_bar"].detach(), scale_factor=DOWNSAMPLING, mode="nearest")
            image = torch.cat([image, condition.to(image.dtype)], dim=1)
        return discriminator(image, features=True)

    def adversarial_logits(self, output: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        return [scale[-1] for scale in output]

    def generator_losses(self, example: Example, fake: torch.Tensor, d_fake, d_real) -> dict[str, torch.Tensor]:
        losses = {}
        if self.lambda_mse:
            losses["mse"] = self.lambda_mse * F.mse_loss(fake, example.real)
        if self.lambda_fm:
            distances = [
                F.l1_loss(f, r) for fake_scale, real_scale in zip(d_fake, d_real)
                for f, r in zip(fake_scale[:-1], real_scale[:-1])
            ]
            losses["fm"] = self.lambda_fm * torch.stack(distances).mean()
        return losses

    def after_generator_step(self) -> None:
        if self.generator.quantizer.learnable:
            self.generator.quantizer.sort_()

    def to_rgb(self, example: Example, image: torch.Tensor) -> torch.Tensor:
        return ((image.float() + 1) / 2).clamp(0, 1)

    def on_train_start(self) -> None:
        self.log("train/bpp_bound", self.bpp_bound, rank_zero_only=True)

    def extra_validation(self, example: Example, fake_rgb: torch.Tensor, real_rgb: torch.Tensor) -> None:
        # generate() left the quantized latent of this batch in the example: no second encoder pass.
        symbols = self.inference_generator.quantizer.indices(example.extras["w_bar"])
        self._val_symbol_counts = self._val_symbol_counts.to(symbols.device) + torch.bincount(
            symbols.flatten(), minlength=self._val_symbol_counts.numel()
        )

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        # The rate an ideal coder with one symbol distribution for the whole validation
        # set would reach: C * H(symbols) / 16^2 bits per pixel.
        counts = self._sum_over_processes(self._val_symbol_counts)
        p = counts.double() / counts.sum().clamp_min(1)
        entropy = -(p[p > 0] * p[p > 0].log2()).sum().item()
        self.log("val/bpp_bound", self.bpp_bound)
        self.log("val/bpp_entropy", self.generator.bottleneck * entropy / DOWNSAMPLING**2)
        self._val_symbol_counts = torch.zeros_like(self._val_symbol_counts)
