"""The alternating GAN training loop, written once for every model family.

A model family subclasses `GANTask` and says four things: how a batch becomes an
`Example` (`prepare`), how the generator makes a fake (`generate`), what the
discriminator sees (`discriminate`), and what the generator's extra losses are
(`generator_losses`). Everything else (the D and G steps, n_critic, the gradient penalty,
clipping, the learning-rate decay, validation metrics, sample images) lives here.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import lightning as L
import torch
from torch import nn

from ganforge.checks import check_int, check_number
from ganforge.compat import attached_trainer, batches_that_stepped
from ganforge.losses import GANLoss, make_gan_loss
from ganforge.nn.augment import augmented, make_augment
from ganforge.penalties import penalty_for
from ganforge.tasks import speed
from ganforge.tasks.cadence import TrainLogCadence
from ganforge.tasks.clipping import clip_gradients, loss_scaler
from ganforge.tasks.ema import average_of, update_average
from ganforge.tasks.examples import Example, detached, network_part, pad_to_multiple
from ganforge.tasks.guards import NonFiniteGuard, reseed_for_batch
from ganforge.tasks.options import GradClip, LrDecay, OptimOptions, from_config
from ganforge.tasks.registry import family_of
from ganforge.tasks.replicas import DistributedNetworks, NetworkReplicas
from ganforge.tasks.validation import MS_SSIM_MIN_SIDE, ReconstructionMetrics

__all__ = ["Example", "GANTask", "MS_SSIM_MIN_SIDE", "network_part", "pad_to_multiple"]  # re-exported

log = logging.getLogger("ganforge")


class GANTask(DistributedNetworks, L.LightningModule):
    """Alternating discriminator / generator updates with manual optimization.

    Each training batch: the generator makes `fake` once; D takes one step on (real,
    fake.detach()) plus its penalty; every `n_critic`-th batch G takes one step on D(fake)
    plus its extra losses (`trainer.max_steps` counts D's and G's steps).

    gan_loss: {kind, ...} (ganforge.losses); penalty: {kind: none|gp|dragan|r1, weight,
    every_n_steps} (ganforge.penalties; the legacy gan_loss wgan_gp implies gp); augment:
    {kind: none|diffaugment, ...}: DiffAugment of everything D sees in training; optim,
    lr_decay, grad_clip: ganforge.tasks.options; ema_decay: validate, sample and predict
    with a moving average of G (tasks/ema.py); channels_last, compile, compile_backend:
    tasks/speed.py (a penalized D stays uncompiled: no double backward).

    Randomness inside a step comes from torch's global generator, re-seeded before every
    batch from (seed, rank, epoch, batch) (tasks/guards.py), so a resumed run repeats it.
    Under 16-mixed the loss scaling reaches the whole manual loop (tasks/clipping.py, the
    penalties' `input_gradients`). `guard.on_nonfinite`: "stop" or "skip" a step whose loss
    is NaN or infinite (tasks/guards.py).

    A family registers itself (tasks/registry.py) and defines `prepare`, `generate`,
    `discriminate`, `to_rgb` and, where it has them, the other methods below.
    """

    #: Whether validation scores the output against the batch's target (L1, PSNR, SSIM):
    #: true for the families that reconstruct an image; generation from noise sets False
    #: and is scored by its samples' statistics instead.
    reconstructs: bool = True

    generator: nn.Module
    discriminator: nn.Module

    def __init__(
        self,
        gan_loss: Mapping[str, Any] | None = None,
        penalty: Mapping[str, Any] | None = None,
        augment: Mapping[str, Any] | None = None,
        optim: OptimOptions | Mapping[str, Any] | None = None,
        lr_decay: LrDecay | Mapping[str, Any] | None = None,
        grad_clip: GradClip | Mapping[str, Any] | None = None,
        n_critic: int = 1,
        ema_decay: float | None = None,
        channels_last: bool = False,
        compile: bool = False,
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.gan_loss: GANLoss = make_gan_loss(**dict(gan_loss or {"kind": "vanilla"}))
        self.penalty = penalty_for(self.gan_loss, penalty)
        self.augment = make_augment(**dict(augment or {"kind": "none"}))
        self.optim = from_config(OptimOptions, optim, "model.optim")
        self.speed = speed.SpeedOptions(channels_last, compile, compile_backend)
        self.lr_decay = from_config(LrDecay, lr_decay, "model.lr_decay")
        self.grad_clip = from_config(GradClip, grad_clip, "model.grad_clip")
        self.n_critic = check_int("model.n_critic", n_critic, 1)
        self.ema_decay = None if ema_decay is None else check_number("model.ema_decay", ema_decay, 0, 1,
                                                                     open_maximum=True)
        self.generator_ema: nn.Module | None = None
        self.replicas = NetworkReplicas()  # distributed wrappers, see distribute()
        self.guard = NonFiniteGuard()
        self.cadence = TrainLogCadence()
        self.reconstruction = ReconstructionMetrics() if self.reconstructs else None

    # ---- what a model family defines -------------------------------------------------

    def prepare(self, batch: Mapping[str, torch.Tensor]) -> Example:
        raise NotImplementedError

    def generate(self, example: Example, generator: nn.Module) -> torch.Tensor:
        """The fake image for `example`, made by `generator` (the trained one or its average)."""
        raise NotImplementedError

    def discriminate(self, example: Example, image: torch.Tensor, discriminator: nn.Module) -> Any:
        """D's output for `image`, computed by calling `discriminator` (the discriminator, or
        its DistributedDataParallel wrapper: call it, not its other methods): logits, or
        anything `adversarial_logits` reads logits from."""
        raise NotImplementedError

    def adversarial_logits(self, output: Any) -> Any:
        """The logits (a tensor or a list per scale) in D's output."""
        return output

    def generator_losses(self, example: Example, fake: torch.Tensor, d_fake: Any,
                         d_real: Any) -> dict[str, torch.Tensor]:
        """Weighted extra terms of G's loss, by name (logged as train/loss_g_<name>).

        d_fake is D's output for the fake (with graph), d_real D's output for the real
        image from this batch's D step (detached), for losses such as feature matching.
        """
        return {}

    def after_generator_step(self) -> None:
        """Called after each G step (e.g. to keep learnable parameters in shape)."""

    @property
    def multiple(self) -> int:
        """Image sides the generator accepts are multiples of this; validation pads to it."""
        return 1

    def to_rgb(self, example: Example, image: torch.Tensor) -> torch.Tensor:
        """A generated or real image in network units -> RGB in [0, 1], (N, 3, H, W)."""
        raise NotImplementedError

    def batch_from_images(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch `prepare` expects for input photos alone (prediction): RGB in [0, 1],
        (N, 3, H, W). Families whose data come in pairs put the photo where the input goes."""
        return {"image": rgb}

    def condition_rgb(self, example: Example) -> torch.Tensor | None:
        """The condition as an RGB picture for sample grids, if there is one."""
        return None

    def extra_validation(self, example: Example, fake_rgb: torch.Tensor, real_rgb: torch.Tensor) -> None:
        """A hook for family-specific validation metrics (images cropped back to size)."""

    def validation_logs(self) -> dict[str, Any]:
        """Family-specific metrics to log at the end of a validation (and reset)."""
        return {}

    # ---- the generator's moving average, checkpoints -----------------------------------

    def setup(self, stage: str) -> None:
        if self.ema_decay is not None and self.generator_ema is None:
            self.generator_ema = average_of(self.generator)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

    @property
    def inference_generator(self) -> nn.Module:
        """The generator that validation, samples and prediction use."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The family (ganforge.tasks.registry) tells a reader which task to rebuild.
        checkpoint["ganforge"] = {"family": family_of(self), "nonfinite_skips": self.guard.skips}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Build the average before Lightning loads its weights into it.
        self.setup("fit")
        self.guard.skips = int(checkpoint.get("ganforge", {}).get("nonfinite_skips", 0))

    # ---- hooks: memory format, compilation, re-seeding ----------------------------------

    def configure_model(self) -> None:
        """Lightning calls this in every trainer.fit / validate, after `setup`."""
        networks = [self.generator, self.discriminator] + ([self.generator_ema] if self.generator_ema is not None else [])
        fitting = self.speed.compile and self.trainer.state.fn == "fit"  # only compiling asks the trainer
        self.speed.networks(networks, fitting=fitting,
                            skip=self.discriminator if self.penalty.enabled else None)

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.speed.batch(batch)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        reseed_for_batch(self.global_rank, self.current_epoch, batch_idx)
        self.speed.batch(batch)

    # ---- training --------------------------------------------------------------------

    def adam(self, parameters, lr: float) -> torch.optim.Adam:
        """Adam with the configured betas; fused when model.optim.fused and torch can."""
        return speed.adam(parameters, lr, self.optim.betas, self.optim.fused)

    def configure_optimizers(self):
        opt_g = self.adam(self.generator.parameters(), self.optim.lr_g)
        opt_d = self.adam(self.discriminator.parameters(), self.optim.lr_d)
        if not self.lr_decay.enabled:
            return [opt_g, opt_d]
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, self.lr_decay.factor) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers

    def _finite_or_skip(self, name: str, loss: torch.Tensor) -> bool:
        return self.guard.finite_or_skip(self, name, loss)

    def _step(self, optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.grad_clip.enabled:
            clip_gradients(self, optimizer, self.grad_clip, self.loss_scaler)
        optimizer.step()

    @property
    def loss_scaler(self) -> torch.amp.GradScaler | None:
        """The GradScaler of float16 mixed precision (trainer.precision=16-mixed), else None."""
        return loss_scaler(attached_trainer(self))

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        example = self.prepare(batch)
        train_generator = (batch_idx + 1) % self.n_critic == 0
        generator, discriminator = self.trained("generator"), self.trained("discriminator")
        if self.augment.enabled:
            discriminator = augmented(discriminator, self.augment)
        with torch.set_grad_enabled(train_generator):
            fake = self.generate(example, generator)

        self.toggle_optimizer(opt_d)
        d_real = self.discriminate(example, example.real, discriminator)
        d_fake = self.discriminate(example, fake.detach(), discriminator)
        loss_d = self.gan_loss.discriminator(self.adversarial_logits(d_real), self.adversarial_logits(d_fake))
        logs = {"train/loss_d_adv": loss_d.detach()}
        trainer = attached_trainer(self)
        penalty = self.penalty(lambda x: self.adversarial_logits(self.discriminate(example, x, discriminator)),
                               example.real, fake, step=batches_that_stepped(trainer) if trainer is not None else 0,
                               scaler=self.loss_scaler)
        if penalty is not None:  # logged unweighted, as the penalty's formula gives it
            logs[f"train/loss_d_{self.penalty.kind}"] = penalty.detach() / (self.penalty.weight * self.penalty.every_n_steps)
            loss_d = loss_d + penalty
        if not self._finite_or_skip("loss_d", loss_d):
            self.untoggle_optimizer(opt_d)
            return  # G would learn from a broken D: skip the whole batch
        self._step(opt_d, loss_d)
        self.untoggle_optimizer(opt_d)
        logs["train/loss_d"] = loss_d.detach()

        if train_generator:
            self.toggle_optimizer(opt_g)
            with self.replicas.frozen("discriminator"):
                d_fake = self.discriminate(example, fake, discriminator)
            loss_adv = self.gan_loss.generator(self.adversarial_logits(d_fake))
            extras = self.generator_losses(example, fake, d_fake, detached(d_real))
            loss_g = loss_adv + sum(extras.values())
            if not self._finite_or_skip("loss_g", loss_g):
                self.untoggle_optimizer(opt_g)
                train_generator = False
        if train_generator:
            self._step(opt_g, loss_g)
            self.untoggle_optimizer(opt_g)
            self.after_generator_step()
            if self.generator_ema is not None:
                update_average(self.generator_ema, self.generator, self.ema_updates, self.ema_decay)
            logs["train/loss_g"] = loss_g.detach()
            logs["train/loss_g_adv"] = loss_adv.detach()
            logs.update({f"train/loss_g_{name}": value.detach() for name, value in extras.items()})
        self._log_train(logs, batch_idx, example.real.shape[0])

    def _log_train(self, logs: dict[str, torch.Tensor], batch_idx: int, batch_size: int) -> None:
        logs = self.cadence.latest(attached_trainer(self), self.current_epoch, logs)
        if self._logs_reach_anyone(batch_idx):
            self.log_dict(logs, prog_bar=False, batch_size=batch_size)
            self.log("loss_d", logs["train/loss_d"], prog_bar=True, logger=False)
            if "train/loss_g" in logs:
                self.log("loss_g", logs["train/loss_g"], prog_bar=True, logger=False)

    def _logs_reach_anyone(self, batch_idx: int) -> bool:
        return self.cadence.due(attached_trainer(self), batch_idx)

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
        self.log("train/lr_g", self.optimizers()[0].param_groups[0]["lr"], on_epoch=True)

    # ---- validation ------------------------------------------------------------------

    def validation_images(self, batch: Mapping[str, torch.Tensor]) -> tuple[Example, torch.Tensor, torch.Tensor]:
        """(example, fake RGB, real RGB) for a validation batch, each (N, 3, H, W) in [0, 1]
        at the batch's size: the batch padded to the network's multiple, generated by the
        inference generator, and cropped back."""
        batch, (height, width) = pad_to_multiple(batch, self.multiple)
        example = self.prepare(batch)
        fake = self.generate(example, self.inference_generator)
        fake_rgb = self.to_rgb(example, fake)[..., :height, :width].contiguous()
        real_rgb = self.to_rgb(example, example.real)[..., :height, :width].contiguous()
        return example, fake_rgb, real_rgb

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Updates the metrics; returns {"fake", "real"}: RGB in [0, 1], (N, 3, H, W), cropped
        back to the batch's size, for callbacks that score more (FID, KID, ...)."""
        example, fake_rgb, real_rgb = self.validation_images(batch)
        if self.reconstruction is not None:
            self.reconstruction.update(fake_rgb, real_rgb)
        self.extra_validation(example, fake_rgb, real_rgb)
        return {"fake": fake_rgb, "real": real_rgb}

    def on_validation_epoch_end(self) -> None:
        if self.reconstruction is not None:
            self.log_dict(self.reconstruction.compute_and_reset(), prog_bar=False)
        for name, value in self.validation_logs().items():
            self.log(name, value)

    # ---- prediction ------------------------------------------------------------------

    @torch.no_grad()
    def translate(self, rgb: torch.Tensor, generator: nn.Module | None = None) -> torch.Tensor:
        """The generator's picture for input photos of any size: RGB in [0, 1], (N, 3, H, W)
        -> (N, 3, H, W). The input is padded to the network's multiple and the output cropped
        back. `generator` defaults to the inference generator (the moving average, if any);
        its train/eval mode is the caller's choice."""
        batch, (height, width) = pad_to_multiple(self.batch_from_images(rgb), self.multiple)
        example = self.prepare(batch)
        fake = self.generate(example, generator if generator is not None else self.inference_generator)
        return self.to_rgb(example, fake)[..., :height, :width]

    # ---- samples ---------------------------------------------------------------------

    @torch.no_grad()
    def sample_images(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """RGB rows for a sample grid: input (if any), output, target; each (N, 3, H, W)."""
        batch, (height, width) = pad_to_multiple(batch, self.multiple)
        example = self.prepare(batch)
        fake = self.generate(example, self.inference_generator)
        rows = {}
        condition = self.condition_rgb(example)
        if condition is not None:
            rows["input"] = condition
        rows["output"] = self.to_rgb(example, fake)
        rows["target"] = self.to_rgb(example, example.real)
        return {name: row[..., :height, :width] for name, row in rows.items()}
