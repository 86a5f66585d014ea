"""The alternating GAN training loop, written once for every model family.

A model family subclasses `GANTask` and says four things: how a batch becomes an
`Example` (`prepare`), how the generator makes a fake (`generate`), what the
discriminator sees (`discriminate`), and what the generator's extra losses are
(`generator_losses`). Everything else (the D and G steps, n_critic, the gradient penalty,
clipping, the learning-rate decay, validation metrics, sample images) lives here.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, MutableMapping

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.image import (
    MultiScaleStructuralSimilarityIndexMeasure,
    PeakSignalNoiseRatio,
    StructuralSimilarityIndexMeasure,
)

from ganforge.checks import check_bool, check_choice, check_int, check_number
from ganforge.errors import ConfigError, NonFiniteLossError
from ganforge.losses import GANLoss, gradient_penalty, make_gan_loss
from ganforge.nn.precision import without_autocast
from ganforge.tasks.registry import family_of

__all__ = ["Example", "GANTask", "MS_SSIM_MIN_SIDE", "network_part", "pad_to_multiple"]

log = logging.getLogger("ganforge")

# MS-SSIM's five scales with an 11-pixel window need sides of at least (11 - 1) * 2**4 + 1.
MS_SSIM_MIN_SIDE = 161


@dataclass
class Example:
    """One batch as a model family sees it.

    condition: what the generator is given (and a conditional D sees beside the image),
        or None.
    real: the image the generator should produce, in network units.
    extras: anything else the family needs later (e.g. the quantized latent).
    """

    condition: torch.Tensor | None
    real: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)


def network_part(shared: Any, own: Any) -> Any:
    """One network's norm or act config: its own setting over the shared group's.

    ``own`` None keeps the shared setting; a name (``model.discriminator.norm=spectral``)
    replaces the kind and keeps the shared options; a mapping overrides field by field.
    """
    if own is None:
        return shared
    shared_fields = dict(shared) if isinstance(shared, Mapping) else {"kind": shared}
    if isinstance(own, str):
        return {**shared_fields, "kind": own}
    if isinstance(own, Mapping):
        return {**shared_fields, **own}
    raise ConfigError(f"a per-network norm or act must be a name or a mapping, got {own!r}")


class GANTask(L.LightningModule):
    """Alternating discriminator / generator updates with manual optimization.

    Each training batch: the generator makes `fake` once; D takes one step on
    (real, fake.detach()); every `n_critic`-th batch G takes one step on D(fake) plus its
    extra losses. `trainer.max_steps` therefore counts optimizer steps, D's and G's.

    gan_loss: {kind: vanilla|lsgan|hinge|wgan_gp, ...options}.
    optim: {lr_g, lr_d, betas, fused}; Adam for both networks. fused (default true): torch's
        fused Adam kernel where torch has one for the parameters' device and dtype (CPU,
        CUDA, ...), else its default (foreach) Adam; the same update, computed in one kernel.
    lr_decay: {start_epoch, epochs}: constant learning rate until `start_epoch`, then a
        linear decay to 0 over `epochs` epochs (pix2pix's "linear" policy); epochs 0 = off.
    grad_clip: {value, algorithm}: clip each network's gradients (norm or value); null = off.
    ema_decay: keep an exponential moving average of the generator's weights (its buffers,
        such as batch-norm statistics, are copied) and validate and sample with it; null = off.
        The decay is warmed up as min(decay, (1 + t) / (10 + t)) after t generator steps,
        so early averages are not dominated by the initial weights.

    Randomness inside a step (dropout, noise, the gradient penalty's mixing) comes from
    torch's global generator, re-seeded before every training batch from (seed, rank,
    epoch, batch): a resumed run draws the same numbers as an uninterrupted one.

    channels_last: keep the networks' weights and the image batches in channels-last
        memory format (faster convolutions on tensor-core GPUs).
    compile: torch.compile each network in place (nn.Module.compile, so state-dict keys,
        checkpoints, the EMA and export are unchanged) when training starts;
        compile_backend picks the backend (default inductor). A discriminator trained with a
        gradient penalty stays uncompiled: torch.compile cannot take the double backward.
        Evaluation, prediction and export run the networks uncompiled.

    Under trainer.precision=16-mixed (float16 autocast and a GradScaler) the loss scaling
    reaches every part of the manual loop: `manual_backward` scales the loss, clipping
    clips the still-scaled gradients at value * scale (the same as unscaling first), the
    scaler skips a step whose gradients overflowed and lowers its scale, and the gradient
    penalty scales D's outputs (see `ganforge.losses.gradient_penalty`).

    Train losses are handed to Lightning only on the batches whose step metrics reach the
    loggers (every trainer.log_every_n_steps batches) and on the first and last batch of
    each epoch; `self.log` on the other batches cost about 7 ms per step for nothing.

    `on_nonfinite` (set by train.py from trainer_guard.on_nonfinite): "stop" raises
    NonFiniteLossError when a loss is NaN or infinite, before any weight changes; "skip"
    skips that network's step and counts it (logged as train/nonfinite_skips).
    """

    on_nonfinite: str = "stop"

    generator: nn.Module
    discriminator: nn.Module

    def __init__(
        self,
        gan_loss: Mapping[str, Any] | None = None,
        optim: Mapping[str, Any] | None = None,
        lr_decay: Mapping[str, Any] | None = None,
        grad_clip: Mapping[str, Any] | None = None,
        n_critic: int = 1,
        ema_decay: float | None = None,
        channels_last: bool = False,
        compile: bool = False,
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.gan_loss: GANLoss = make_gan_loss(**dict(gan_loss or {"kind": "vanilla"}))
        optim = {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "fused": True, **dict(optim or {})}
        unknown = sorted(set(optim) - {"lr_g", "lr_d", "betas", "fused"})
        if unknown:
            raise ConfigError(f"unknown model.optim option(s) {unknown}: the options are lr_g, lr_d, betas, fused")
        self.lr_g = check_number("model.optim.lr_g", optim["lr_g"], 0, open_minimum=True)
        self.lr_d = check_number("model.optim.lr_d", optim["lr_d"], 0, open_minimum=True)
        betas = tuple(optim["betas"])
        if len(betas) != 2:
            raise ConfigError(f"model.optim.betas must be two numbers such as [0.5, 0.999], got {list(betas)}")
        self.betas = tuple(check_number("model.optim.betas", b, 0, 1, open_maximum=True) for b in betas)
        self.fused = check_bool("model.optim.fused", optim["fused"])
        self.channels_last = check_bool("model.channels_last", channels_last)
        self.compile_networks = check_bool("model.compile", compile)
        self.compile_backend = str(compile_backend)
        if self.compile_networks:
            import torch._dynamo

            backends = torch._dynamo.list_backends(exclude_tags=())
            if self.compile_backend not in backends:
                raise ConfigError(f"model.compile_backend={self.compile_backend} is not a torch.compile backend: "
                                  f"choose one of {', '.join(sorted(backends))} (inductor is the default)")
        self._compiled = False
        self._latest_logs: tuple[Any, dict[str, torch.Tensor]] = (None, {})
        lr_decay = {"start_epoch": 0, "epochs": 0, **dict(lr_decay or {})}
        self.decay_start = check_int("model.lr_decay.start_epoch", lr_decay["start_epoch"] or 0, 0)
        self.decay_epochs = check_int("model.lr_decay.epochs", lr_decay["epochs"] or 0, 0)
        grad_clip = {"value": None, "algorithm": "norm", **dict(grad_clip or {})}
        self.clip_value = grad_clip["value"]
        if self.clip_value is not None:
            check_number("model.grad_clip.value", self.clip_value, 0, open_minimum=True)
        self.clip_algorithm = check_choice("model.grad_clip.algorithm", grad_clip["algorithm"], ("norm", "value"))
        self.n_critic = check_int("model.n_critic", n_critic, 1)
        self.ema_decay = None if ema_decay is None else check_number("model.ema_decay", ema_decay, 0, 1, open_maximum=True)
        self.generator_ema: nn.Module | None = None
        self._replicas: dict[str, nn.Module] = {}  # distributed wrappers, see distribute()
        self.nonfinite_skips = 0
        metrics = MetricCollection(
            {
                "l1": MeanAbsoluteError(),
                "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
                "ssim": _Float32SSIM(data_range=1.0),
            },
            prefix="val/",
        )
        self.val_metrics = metrics
        # Logged only when every validation image is large enough for its five scales.
        self.ms_ssim = _Float32MSSSIM(data_range=1.0)
        self._ms_ssim_skipped = False

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

    def generator_losses(self, example: Example, fake: torch.Tensor, d_fake: Any, d_real: Any) -> dict[str, torch.Tensor]:
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

    # ---- data parallel training -------------------------------------------------------

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Train through `wrap(self.generator)` and `wrap(self.discriminator)`: each network
        gets its own DistributedDataParallel (ganforge.distributed.GANDDPStrategy), so each
        backward pass synchronizes exactly the network it trains. The wrappers are not
        submodules: the task's state dict and checkpoints stay those of a single process."""
        self._replicas = {"generator": wrap(self.generator), "discriminator": wrap(self.discriminator)}

    def undistribute(self) -> None:
        self._replicas = {}

    def trained(self, name: str) -> nn.Module:
        """The network `name` ("generator" or "discriminator") as training calls it: its
        distributed wrapper when there is one."""
        replica = self._replicas.get(name)
        return replica if replica is not None else getattr(self, name)

    def _discriminator_frozen(self):
        """D's forward in G's step: D's parameters take no gradient, so its wrapper must not
        wait for them (DistributedDataParallel.no_sync)."""
        replica = self._replicas.get("discriminator")
        return replica.no_sync() if replica is not None else contextlib.nullcontext()

    # ---- the generator's moving average ----------------------------------------------

    def setup(self, stage: str) -> None:
        if self.ema_decay is not None and self.generator_ema is None:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

    @property
    def inference_generator(self) -> nn.Module:
        """The generator that validation, samples and prediction use."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        t = float(self.ema_updates)
        decay = min(self.ema_decay, (1 + t) / (10 + t))
        for average, current in zip(self.generator_ema.parameters(), self.generator.parameters()):
            average.lerp_(current.detach(), 1 - decay)
        for average, current in zip(self.generator_ema.buffers(), self.generator.buffers()):
            average.copy_(current)
        self.ema_updates += 1

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The family (ganforge.tasks.registry) tells a reader which task to rebuild.
        checkpoint["ganforge"] = {"family": family_of(self), "nonfinite_skips": self.nonfinite_skips}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Build the average before Lightning loads its weights into it.
        self.setup("fit")
        self.nonfinite_skips = int(checkpoint.get("ganforge", {}).get("nonfinite_skips", 0))

    # ---- memory format and compilation -------------------------------------------------

    def configure_model(self) -> None:
        """Lightning calls this in every trainer.fit / validate, after `setup`: the networks
        (the EMA included) go to channels-last, and are compiled for training."""
        networks = [self.generator, self.discriminator] + ([self.generator_ema] if self.generator_ema is not None else [])
        if self.channels_last:
            for network in networks:
                network.to(memory_format=torch.channels_last)
        if self.compile_networks and not self._compiled and self.trainer.state.fn == "fit":
            # After `setup` made the EMA: a deep copy of a compiled module would call the original.
            for network in networks:
                if network is self.discriminator and self.gan_loss.gradient_penalty_weight > 0:
                    log.info("model.compile: the discriminator stays uncompiled, because torch.compile cannot "
                             "differentiate the gradient penalty twice")
                    continue
                network.compile(backend=self.compile_backend)
            self._compiled = True

    def _channels_last_batch(self, batch: Any) -> None:
        """With model.channels_last, turn the batch's images to channels-last in place (the
        batch hooks see the dict that the step gets; overriding on_after_batch_transfer
        instead would make Lightning warn in every run that passes a DataModule)."""
        if self.channels_last and isinstance(batch, MutableMapping):
            for key, value in batch.items():
                if isinstance(value, torch.Tensor) and value.dim() == 4:
                    batch[key] = value.contiguous(memory_format=torch.channels_last)

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._channels_last_batch(batch)

    # ---- guards ----------------------------------------------------------------------

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Seed from PL_GLOBAL_SEED, which train.py's seed_everything(cfg.seed) sets.
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        key = (seed, self.global_rank, self.current_epoch, batch_idx)
        torch.manual_seed(int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> 1))
        self._channels_last_batch(batch)

    def _finite_or_skip(self, name: str, loss: torch.Tensor) -> bool:
        """True when `loss` is finite on every process; otherwise stop or count a skip."""
        finite = bool(torch.isfinite(loss).all())
        if self._trainer is not None:
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            return True
        if self.on_nonfinite == "skip":
            self.nonfinite_skips += 1
            self.log("train/nonfinite_skips", float(self.nonfinite_skips))
            return False
        value = loss.detach().float().cpu()
        shown = "NaN" if bool(torch.isnan(value).any()) else "infinite"
        raise NonFiniteLossError(
            f"train/{name} became {shown} at step {self.global_step} (epoch {self.current_epoch}, batch "
            f"{self.trainer.fit_loop.epoch_loop.batch_idx if self._trainer is not None else '?'}): training stopped "
            "before changing the weights; lower the learning rates (model.optim.lr_g / lr_d), clip gradients "
            "(model.grad_clip.value=1), or skip such steps with trainer_guard.on_nonfinite=skip"
        )

    # ---- training --------------------------------------------------------------------

    def adam(self, parameters, lr: float) -> torch.optim.Adam:
        """Adam with the configured betas; fused (one kernel for the whole update) when
        model.optim.fused is true and torch has a fused kernel for these parameters."""
        parameters = list(parameters)
        fused = self.fused and _fused_adam_supported(parameters)
        return torch.optim.Adam(parameters, lr=lr, betas=self.betas, **({"fused": True} if fused else {}))

    def configure_optimizers(self):
        opt_g = self.adam(self.generator.parameters(), self.lr_g)
        opt_d = self.adam(self.discriminator.parameters(), self.lr_d)
        if not self.decay_epochs:
            return [opt_g, opt_d]

        def factor(epoch: int) -> float:
            return max(0.0, 1.0 - max(0, epoch - self.decay_start) / float(self.decay_epochs + 1))

        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers

    def _step(self, optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.clip_value is not None:
            self._clip(optimizer)
        optimizer.step()

    @property
    def loss_scaler(self) -> torch.amp.GradScaler | None:
        """The GradScaler of float16 mixed precision (trainer.precision=16-mixed), else None."""
        if self._trainer is None:
            return None
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        return scaler if scaler is not None and scaler.is_enabled() else None

    def _clip(self, optimizer) -> None:
        from lightning.pytorch.plugins.precision import MixedPrecision

        if not isinstance(self.trainer.precision_plugin, MixedPrecision):
            self.clip_gradients(optimizer, gradient_clip_val=self.clip_value, gradient_clip_algorithm=self.clip_algorithm)
            return
        # Mixed precision: Lightning's clip_gradients would clip the gradients as they are
        # here, before optimizer.step(), where its plugin unscales them: still multiplied by
        # the loss scale under 16-mixed. Clipping them at value * scale is the same as
        # unscaling, clipping at value and scaling again (the scale is a power of two). It
        # also refuses fused optimizers, which unscale inside their step. Inf or NaN
        # gradients stay non-finite, so the scaler still skips that step.
        value = self.clip_value
        scaler = self.loss_scaler
        if scaler is not None:
            value = value * scaler.get_scale()
        parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.clip_algorithm == "norm":
            torch.nn.utils.clip_grad_norm_(parameters, value)
        else:
            torch.nn.utils.clip_grad_value_(parameters, value)

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        example = self.prepare(batch)
        train_generator = (batch_idx + 1) % self.n_critic == 0
        generator, discriminator = self.trained("generator"), self.trained("discriminator")
        with torch.set_grad_enabled(train_generator):
            fake = self.generate(example, generator)

        self.toggle_optimizer(opt_d)
        d_real = self.discriminate(example, example.real, discriminator)
        d_fake = self.discriminate(example, fake.detach(), discriminator)
        loss_d = self.gan_loss.discriminator(self.adversarial_logits(d_real), self.adversarial_logits(d_fake))
        logs = {"train/loss_d_adv": loss_d.detach()}
        if self.gan_loss.gradient_penalty_weight > 0:
            penalty = gradient_penalty(
                lambda x: self.adversarial_logits(self.discriminate(example, x, discriminator)), example.real, fake,
                scaler=self.loss_scaler,
            )
            logs["train/loss_d_gp"] = penalty.detach()
            loss_d = loss_d + self.gan_loss.gradient_penalty_weight * penalty
        if not self._finite_or_skip("loss_d", loss_d):
            self.untoggle_optimizer(opt_d)
            return  # G would learn from a broken D: skip the whole batch
        self._step(opt_d, loss_d)
        self.untoggle_optimizer(opt_d)
        logs["train/loss_d"] = loss_d.detach()

        if train_generator:
            self.toggle_optimizer(opt_g)
            with self._discriminator_frozen():
                d_fake = self.discriminate(example, fake, discriminator)
            loss_adv = self.gan_loss.generator(self.adversarial_logits(d_fake))
            extras = self.generator_losses(example, fake, d_fake, _detached(d_real))
            loss_g = loss_adv + sum(extras.values())
            if not self._finite_or_skip("loss_g", loss_g):
                self.untoggle_optimizer(opt_g)
                train_generator = False
        if train_generator:
            self._step(opt_g, loss_g)
            self.untoggle_optimizer(opt_g)
            self.after_generator_step()
            self._update_ema()
            logs["train/loss_g"] = loss_g.detach()
            logs["train/loss_g_adv"] = loss_adv.detach()
            logs.update({f"train/loss_g_{name}": value.detach() for name, value in extras.items()})

        logs = self._latest_train_logs(logs)
        if self._logs_reach_anyone(batch_idx):
            self.log_dict(logs, prog_bar=False, batch_size=example.real.shape[0])
            self.log("loss_d", logs["train/loss_d"], prog_bar=True, logger=False)
            if "train/loss_g" in logs:
                self.log("loss_g", logs["train/loss_g"], prog_bar=True, logger=False)

    def _latest_train_logs(self, logs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`logs` over the latest value of every train loss logged earlier in this epoch: what
        Lightning would hold had every batch been logged (with n_critic > 1, G's losses come
        from its last step), so the loggers get the same numbers."""
        epoch = (id(self._trainer), self.current_epoch)
        if self._latest_logs[0] != epoch:
            self._latest_logs = (epoch, {})
        self._latest_logs[1].update(logs)
        return dict(self._latest_logs[1])

    def _logs_reach_anyone(self, batch_idx: int) -> bool:
        """Whether this batch's train losses go to Lightning: on the batches whose step
        metrics Lightning hands to the loggers (every trainer.log_every_n_steps batches, and
        when the run is stopping); on the last batch of an epoch or of the run, so that
        callback_metrics (train.py's summary, callbacks) hold the latest losses; and on the
        first batch of an epoch, so that the progress bar has numbers from the start (and
        Lightning's one-time set-up of each logged key, ~15 ms, falls on the first batch).
        The progress bar shows the values of the last such batch."""
        if self._trainer is None:
            return True
        trainer = self.trainer
        connector = getattr(trainer, "_logger_connector", None)
        if trainer.fast_dev_run or connector is None or connector.should_update_logs:
            return True
        if batch_idx == 0 or batch_idx + 1 >= trainer.num_training_batches:
            return True
        return 0 <= trainer.max_steps <= trainer.global_step

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
        self.log("train/lr_g", self.optimizers()[0].param_groups[0]["lr"], on_epoch=True)

    # ---- validation ------------------------------------------------------------------

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Updates the metrics; returns {"fake", "real"}: RGB in [0, 1], (N, 3, H, W), cropped
        back to the batch's size, for callbacks that score more (eval's FID and KID)."""
        batch, (height, width) = pad_to_multiple(batch, self.multiple)
        example = self.prepare(batch)
        fake = self.generate(example, self.inference_generator)
        fake_rgb = self.to_rgb(example, fake)[..., :height, :width].contiguous()
        real_rgb = self.to_rgb(example, example.real)[..., :height, :width].contiguous()
        self.val_metrics.update(fake_rgb, real_rgb)
        if min(height, width) >= MS_SSIM_MIN_SIDE:
            self.ms_ssim.update(fake_rgb, real_rgb)
        else:
            self._ms_ssim_skipped = True
        self.extra_validation(example, fake_rgb, real_rgb)
        return {"fake": fake_rgb, "real": real_rgb}

    def extra_validation(self, example: Example, fake_rgb: torch.Tensor, real_rgb: torch.Tensor) -> None:
        """A hook for family-specific validation metrics (images cropped back to size)."""

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=False)
        self.val_metrics.reset()
        if not self._ms_ssim_skipped and self.ms_ssim.update_count:
            self.log("val/ms_ssim", self.ms_ssim.compute())
        self.ms_ssim.reset()
        self._ms_ssim_skipped = False

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


class _Float32Update:
    """A metric whose update runs in float32 also under autocast (SSIM's Gaussian window is
    a convolution, which bf16-mixed / 16-mixed would run in half precision)."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        with without_autocast(preds):
            super().update(preds.float(), target.float())


class _Float32SSIM(_Float32Update, StructuralSimilarityIndexMeasure):
    pass


class _Float32MSSSIM(_Float32Update, MultiScaleStructuralSimilarityIndexMeasure):
    pass


def _fused_adam_supported(parameters: list[torch.Tensor]) -> bool:
    """Whether torch has a fused Adam kernel for all of `parameters` (device and dtype)."""
    try:
        from torch.optim.optimizer import _default_to_fused_or_foreach
    except ImportError:  # a torch without the helper: do without fusing
        return False
    return bool(parameters) and _default_to_fused_or_foreach(parameters, differentiable=False, use_fused=True)[0]


def _detached(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, (list, tuple)):
        return type(output)(_detached(o) for o in output)
    return output


def pad_to_multiple(batch: Mapping[str, torch.Tensor], multiple: int) -> tuple[dict[str, torch.Tensor], tuple[int, int]]:
    """Pad every image in `batch` on the bottom and right to sides that are multiples of
    `multiple` (mirror padding, or edge replication where the image is too small to
    mirror); returns the padded batch and the original (height, width) to crop back to."""
    first = next(iter(batch.values()))
    height, width = first.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return dict(batch), (height, width)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    padded = {key: F.pad(value, (0, pad_w, 0, pad_h), mode=mode) for key, value in batch.items()}
    return padded, (height, width)
