"""Training-step time of our LightningModules inside a Lightning Trainer, against a plain
PyTorch loop over the same networks, losses and optimizers; FLOPs; a matmul reference.

Configs (paper sizes, CPU): pix2pix (unet_256 + 70x70 PatchGAN, batch norm, vanilla GAN
loss, lambda_L1 100; aligned A|B pairs 3 -> 3 channels, 256x256, generated in a temporary
folder and read by `PairedDataModule` with its configured 2 workers) at batch 1 and 4;
generative compression (widths 1.0, 9 residual blocks, C=8, L=5, a 3-scale ndf-64
discriminator, instance norm, LSGAN, lambda_MSE 12, feature matching 10, EMA 0.999: the
settings of conf/experiment/gc_cityscapes.yaml) on 256x512 crops of the bundled photos from
`SampleDataModule` (0 workers), batch 1; generation from noise at batch 64, 32x32 RGB (a class
folder of smooth PNGs in 10 class subfolders, generated in the temporary folder and read by
`ClassFolderDataModule` with its configured 4 workers; unconditional, so "label" is unused):
dcgan (experiment=sndcgan_cifar10: SNDCGAN at the paper's widths G 512 / D 64, hinge,
n_critic 1, EMA) and sngan (experiment=sngan_cifar10: the ResNet, G 256 / D 128, hinge,
n_critic 5, EMA).

A "step" is one training batch: one D step and, on every n_critic-th batch, a G step (and the
EMA update). With n_critic 1 (all but sngan) every batch is both, and a step's time is the
median. With n_critic > 1 warm-up and timed batches are rounded up to whole D/G cycles, ours
and plain take their G steps on the same batches (the plain loop counts batches as the task
counts batch_idx), and a step's time (`seconds_per_batch`) is the mean batch time of a cycle
from the medians of each kind: (1 - 1/n_critic) * median(D-only) + 1/n_critic * median(D+G);
both kinds are reported (`d_only`, `d_and_g`), and so are the pairs' median ratios per kind.

Per config, three fresh subprocesses:
* paired (the overhead ratio): ours and plain in one process, step for step. "ours" is
  the task in `lightning.Trainer` (CPU, logger=False, no checkpointing, progress bar or
  model summary, inference_mode=False, limit_val_batches=0), batches from the DataModule's
  train_dataloader; a callback takes time.perf_counter() at on_train_batch_start and
  on_train_batch_end (the module's on_train_batch_start hook and training_step are
  inside). Beside every Trainer batch the callback runs one timed "plain" step on a second
  copy of the networks: before the batch's window on even batches, after it on odd ones.
  Both variants thus see the machine at the same moments; separate runs on this (virtual)
  machine drift by 10-20 % between minutes, more than the 3 % being measured.
* ours alone, plain alone (--rounds times each, in the order ours, plain, plain, ours,
  ..., with half the timed steps): peak memory, CPU use, and the step times once more. "iteration" (ours alone) is
  the time from one batch start to the next (adds fetching the batch and the loop's work).
The plain loop: the same networks (task.generator / task.discriminator), task.gan_loss and
hand-written inputs and extra losses (checked equal to task.prepare / task.generator_losses,
and G's adversarial loss to the task's on the same D output, on the first batch with a G
step; generation: z ~ N(0, I) (batch, z_dim) from torch's generator, real = image * 2 - 1), two Adam
optimizers made by task.adam (fused, as the task's, unless model.optim.fused is off), D excluded from G's
backward (requires_grad off, as toggle_optimizer does), EMA
and symbol counts where the task does them; one fixed batch from the same DataModule.
Step times: medians of the steps after each run's warm-up (pooled over the rounds; n_critic > 1: see above).
CPU per step (getrusage over the timed steps): user and system seconds and minor page
faults, the faults being memory that the allocator returned to the kernel and touches anew.
FLOPs: one plain step under torch.utils.flop_counter.FlopCounterMode (forward and backward
of both networks; a D+G batch); GFLOP/s = FLOPs / median step time. With n_critic > 1 a
D-only batch is counted too, and GFLOP/s = the cycle's mean FLOPs per batch (`flops_per_batch`)
/ seconds_per_batch. Peak memory: each subprocess's resident-set high-water mark
(getrusage ru_maxrss) after its timed steps, the largest over the rounds: the whole
process (Python, torch, the model, optimizer state, activations), the DataLoader workers
(separate processes) not included. The matmul reference: the median
of repeated 2048x2048 float32 torch.mm, at the start and at the end of the run; the better
of the two is the machine's practical limit.

The generation-metrics pass (`run_metrics_pass`; added to a run with a dcgan or sngan config,
or alone with --metrics-pass): GenerationTask validation as train.py runs it, trainer.validate
with the GenerationMetrics callback (classifier feature space) on the demo `model=dcgan` and
the digits' 1797-image reference set; the classifier's one-time training is timed first and
apart, the first validation (with the reference features) and a later one separately.
Prints JSON.

    python bench/train_step.py [--configs pix2pix_b1 pix2pix_b4 compression_b1 dcgan_b64 sngan_b64]
                               [--warmup W] [--steps N] [--rounds R] [--quick]
    python bench/train_step.py --metrics-pass [--quick]           # one generation-metrics validation
    python bench/train_step.py --profile [--config pix2pix_b4]   # where the time goes
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# name -> (model, batch size, warm-up steps per run, timed steps per run); with the default
# 1 round (3 processes per config) the pix2pix and compression configs take about 5 minutes
# on 2 cores, dcgan_b64 and sngan_b64 (with the metrics pass) about 6 more (estimated).
# Generation with n_critic > 1 (sngan: 5) warms up and times whole D/G cycles: warm-up and
# timed batches are rounded up to multiples of n_critic.
CONFIGS = {
    "pix2pix_b1": ("pix2pix", 1, 2, 8),
    "pix2pix_b4": ("pix2pix", 4, 2, 4),
    "compression_b1": ("compression", 1, 1, 3),
    "dcgan_b64": ("dcgan", 64, 2, 8),
    "sngan_b64": ("sngan", 64, 5, 10),
}
# --quick: small networks and images, the same code paths.
QUICK = {
    "pix2pix_b1": ("pix2pix_quick", 1, 1, 2),
    "pix2pix_b4": ("pix2pix_quick", 4, 1, 2),
    "compression_b1": ("compression_quick", 1, 1, 2),
    "dcgan_b64": ("dcgan_quick", 64, 1, 2),
    "sngan_b64": ("sngan_quick", 64, 5, 5),
}
MATMUL_SIZE = 2048


# ---- models and data -------------------------------------------------------------------

# model -> the overrides that compose its config from conf/ (the configs users train with).
TASK_OVERRIDES = {
    # experiment=pix2pix_facades: unet_256 + 70x70 PatchGAN, batch norm, vanilla GAN, lambda_L1 100, pairs
    "pix2pix": ["experiment=pix2pix_facades", "data.root=unused"],
    # the same networks colorizing single photos (bench/data.py's folder case)
    "pix2pix_images": ["model=pix2pix", "norm=batch", "data=folder", "data.root=unused"],
    "pix2pix_quick": ["experiment=pix2pix_facades", "data.root=unused", "model.generator.num_downs=6",
                      "model.generator.ngf=8", "model.discriminator.ndf=8"],
    # the CPU demo: conf/model/pix2pix_small.yaml on data=sample (colorization)
    "pix2pix_small": ["model=pix2pix_small"],
    # experiment=gc_cityscapes: the paper's widths
    "compression": ["experiment=gc_cityscapes", "data.root=unused"],
    "compression_quick": ["experiment=gc_cityscapes", "data.root=unused", "model.generator.width=0.0625",
                          "model.generator.residual_blocks=2", "model.discriminator.ndf=8"],
    # experiment=sndcgan_cifar10: SNDCGAN at the paper's widths (G 512, D 64), hinge, n_critic 1, EMA;
    # 32x32 RGB class folder, 4 workers
    "dcgan": ["experiment=sndcgan_cifar10", "data.root=unused"],
    "dcgan_quick": ["experiment=sndcgan_cifar10", "data.root=unused", "model.generator.base_channels=32",
                    "model.discriminator.base_channels=16"],
    # experiment=sngan_cifar10: the CIFAR-10 ResNet (G 256, D 128), hinge, n_critic 5, EMA
    "sngan": ["experiment=sngan_cifar10", "data.root=unused"],
    "sngan_quick": ["experiment=sngan_cifar10", "data.root=unused", "model.generator.channels=16",
                    "model.discriminator.channels=16"],
}
GENERATION_MODELS = ("dcgan", "dcgan_quick", "sngan", "sngan_quick")
# the generation-metrics pass: the CPU demo (conf/model/dcgan.yaml on data=digits), scored in the
# classifier's feature space as train.py does without Inception weights
METRICS_PASS_OVERRIDES = ["model=dcgan", "callbacks.generation_metrics.features=classifier"]


def compose_config_from(overrides: list[str]):
    """train.yaml with `overrides`, composed with Hydra from the real configs in conf/."""
    from hydra import compose, initialize_config_dir

    from ganforge.cli import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["paths.output_dir=unused", *overrides])


def compose_config(model: str):
    """The training config of `model` (TASK_OVERRIDES)."""
    if model not in TASK_OVERRIDES:
        raise ValueError(f"unknown model {model!r}")
    return compose_config_from(TASK_OVERRIDES[model])


def make_task(model: str):
    """The task of `model`, composed with Hydra from the real configs in conf/."""
    import hydra

    return hydra.utils.instantiate(compose_config(model).model, _convert_="all")


def n_critic_of(model: str) -> int:
    """D steps per G step in `model`'s config (1 where it has none)."""
    return int(compose_config(model).model.get("n_critic", 1))


def image_side(model: str) -> tuple[int, int]:
    if model in GENERATION_MODELS:
        return (32, 32)
    return {"pix2pix": (256, 256), "pix2pix_images": (256, 256), "pix2pix_quick": (64, 64),
            "pix2pix_small": (64, 64), "compression": (256, 512), "compression_quick": (96, 192)}[model]


def smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like uint8 (H, W, 3) image: smooth colour fields plus a little grain, so that
    JPEG and PNG files have realistic sizes and decode times."""
    coarse = (rng.random((max(2, height // 16), max(2, width // 16), 3)) * 255).astype(np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    image = image + rng.integers(-8, 9, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_pairs_folder(root: Path, count: int, side: int = 256, val: int = 2) -> Path:
    """`count` aligned A|B pairs (side x 2*side JPEG, as in facades) in root/train, `val`
    in root/val."""
    rng = np.random.default_rng(0)
    for split, number in (("train", count), ("val", val)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(number):
            Image.fromarray(smooth_image(rng, side, 2 * side)).save(folder / f"{i:04d}.jpg", quality=90)
    return root


def make_image_folder(root: Path, count: int, height: int = 1024, width: int = 2048) -> Path:
    """`count` PNG photos of height x width (Cityscapes' leftImg8bit size by default)."""
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(smooth_image(rng, height, width)).save(root / f"{i:04d}.png", compress_level=1)
    return root


def make_class_folder(root: Path, count: int, side: int = 32, classes: int = 10) -> Path:
    """`count` smooth side x side RGB PNGs (CIFAR-10's size by default) spread over `classes`
    class subfolders (class_0 ...), the layout data=class_folder reads."""
    rng = np.random.default_rng(2)
    for i in range(count):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_image(rng, side, side)).save(folder / f"{i:05d}.png")
    return root


def make_data(model: str, root: Path, images: int) -> Path:
    """The data folder that `make_datamodule(model, ...)` reads, with `images` images (pairs)."""
    if model in GENERATION_MODELS:
        return make_class_folder(root / "classes", images, image_side(model)[0])
    return make_pairs_folder(root / "pairs", images, image_side(model)[0])


def make_datamodule(model: str, batch: int, batches: int, pairs_root: str | None, num_workers: int | None = None):
    """The DataModule that feeds `model`, with at least `batches` training batches per epoch
    (pix2pix and generation: as many as the folder `pairs_root` holds)."""
    from ganforge.data import ClassFolderDataModule, PairedDataModule, SampleDataModule

    if model in GENERATION_MODELS:
        workers = compose_config(model).data.num_workers if num_workers is None else num_workers
        return ClassFolderDataModule(root=pairs_root, image_size=image_side(model)[0], channels=3, batch_size=batch,
                                     num_workers=workers, seed=0)
    if model in ("pix2pix", "pix2pix_quick"):
        side = image_side(model)[0]
        return PairedDataModule(root=pairs_root, crop_size=side, load_size=side * 286 // 256, direction="BtoA",
                                batch_size=batch, num_workers=2 if num_workers is None else num_workers, seed=0)
    crop = list(image_side(model))
    # chelsea (the default validation photo) is smaller than 256x512: validate on another one.
    return SampleDataModule(crop_size=crop, scale=1.0, samples_per_epoch=batch * batches,
                            val_images=["motorcycle_right"], batch_size=batch,
                            num_workers=0 if num_workers is None else num_workers, seed=0)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def cpu_usage(before, after, steps: int) -> dict:
    """Per step, from two getrusage(RUSAGE_SELF) snapshots: user and system CPU seconds and
    minor page faults (first touches of memory the allocator got from the kernel anew)."""
    return {"user_seconds_per_step": (after.ru_utime - before.ru_utime) / steps,
            "sys_seconds_per_step": (after.ru_stime - before.ru_stime) / steps,
            "minor_faults_per_step": (after.ru_minflt - before.ru_minflt) / steps}


def summary(times: list[float], generator_steps: list[bool] | None = None) -> dict | None:
    """Median, min, max and count of step times, and `seconds_per_batch`, the time one
    training batch takes. With every batch a D and a G step (n_critic 1), that is the median.
    With n_critic > 1 (`generator_steps` flags the batches that took a G step) the batches
    are of two kinds: then it is the mean batch time of the D/G cycle from the medians of
    each kind, (1 - f) * median(D-only) + f * median(D+G), f the fraction of D+G batches
    (1 / n_critic over whole cycles); both kinds are reported too."""
    if not times:
        return None
    result = {"median_seconds": statistics.median(times), "min_seconds": min(times), "max_seconds": max(times),
              "count": len(times), "seconds_per_batch": statistics.median(times)}
    if generator_steps is not None and not all(generator_steps):
        d_only = [t for t, g in zip(times, generator_steps) if not g]
        d_and_g = [t for t, g in zip(times, generator_steps) if g]
        result["d_only"], result["d_and_g"] = summary(d_only), summary(d_and_g)
        if d_and_g:
            share = len(d_and_g) / len(times)
            result["seconds_per_batch"] = ((1 - share) * result["d_only"]["median_seconds"]
                                           + share * result["d_and_g"]["median_seconds"])
        result["per_batch_definition"] = (
            "(1 - f) * median(D-only batches) + f * median(D+G batches), f = the fraction of D+G batches")
    return result


# ---- the plain PyTorch loop ------------------------------------------------------------

class PlainLoop:
    """pix2pix / compression / generation training by hand: G forward once; D step on
    (real, fake.detach()); G step on D(fake) + the extra losses, D's weights excluded from
    G's backward; Adam for both; the EMA of G and the symbol counts where the task keeps them.

    Generation (SNDCGAN, SNGAN): z ~ N(0, I) (N, z_dim) from torch's generator, fake = G(z,
    labels) (labels only for a conditional model), D(image, labels) -> (N,) logits; the G
    step (and the EMA update) only on every n_critic-th batch, counted by the loop as the
    task counts batch_idx, and on the other batches G's forward without a graph."""

    def __init__(self, task) -> None:
        from ganforge.tasks import CompressionTask, GenerationTask

        if task.penalty.enabled or task.augment.enabled:
            raise ValueError("the plain loop has no gradient penalty or DiffAugment: bench a config without them")
        self.task = task.train()
        self.compression = isinstance(task, CompressionTask)
        self.generation = isinstance(task, GenerationTask)
        self.n_critic = task.n_critic
        self.batches = 0  # as the task's batch_idx: G steps on batches n_critic - 1, 2 n_critic - 1, ...
        self.G, self.D, self.gan_loss = task.generator, task.discriminator, task.gan_loss
        # The task's own Adam (fused where the task's is): the same optimizers as ours.
        self.opt_g = task.adam(self.G.parameters(), task.optim.lr_g)
        self.opt_d = task.adam(self.D.parameters(), task.optim.lr_d)
        self.ema = copy.deepcopy(self.G).requires_grad_(False) if task.ema_decay is not None else None
        self.ema_updates = 0
        if self.compression:
            levels = self.G.quantizer.num_centers
            self.symbol_counts = torch.zeros(self.G.bottleneck, levels + 1, levels, dtype=torch.long)

    def inputs(self, batch: dict) -> tuple[torch.Tensor | None, torch.Tensor]:
        if self.generation:
            return (batch["label"] if self.task.conditional else None), batch["image"] * 2 - 1
        if self.compression:
            return None, batch["image"] * 2 - 1
        if self.task.data_kind == "images":
            from ganforge.data import lab_to_network, rgb_to_lab

            return lab_to_network(rgb_to_lab(batch["image"]))
        return batch["input"] * 2 - 1, batch["target"] * 2 - 1

    def d_out(self, condition, image):
        if self.generation:
            return self.D(image, condition)
        if self.compression:
            return self.D.features(image)  # per scale: every block's output, logits last
        return self.D(torch.cat([condition, image], dim=1))

    def logits(self, output):
        return [scale[-1] for scale in output] if self.compression else output

    def extra_losses(self, real, fake, d_fake, d_real) -> dict[str, torch.Tensor]:
        if self.generation:
            return {}
        if not self.compression:
            return {"l1": self.task.lambda_l1 * F.l1_loss(fake, real)}
        fm = [F.l1_loss(f, r.detach()) for fs, rs in zip(d_fake, d_real) for f, r in zip(fs[:-1], rs[:-1])]
        return {"mse": self.task.lambda_mse * F.mse_loss(fake, real), "fm": self.task.lambda_fm * torch.stack(fm).mean()}

    @torch.no_grad()
    def count_symbols(self, w_bar: torch.Tensor) -> None:
        levels = self.symbol_counts.shape[2]
        symbols = self.G.quantizer.indices(w_bar)
        above = torch.full_like(symbols, levels)
        above[:, :, 1:] = symbols[:, :, :-1]
        channel = torch.arange(symbols.shape[1]).view(1, -1, 1, 1)
        flat = ((channel * (levels + 1) + above) * levels + symbols).flatten()
        self.symbol_counts += torch.bincount(flat, minlength=self.symbol_counts.numel()).view_as(self.symbol_counts)

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = min(self.task.ema_decay, (1 + self.ema_updates) / (10 + self.ema_updates))
        for average, current in zip(self.ema.parameters(), self.G.parameters()):
            average.lerp_(current, 1 - decay)
        for average, current in zip(self.ema.buffers(), self.G.buffers()):
            average.copy_(current)
        self.ema_updates += 1

    def step(self, batch: dict, check: bool = False, train_generator: bool | None = None) -> dict:
        """One training batch: a D step, and a G step on every n_critic-th batch (or as
        `train_generator` says). `check` compares inputs and losses with the task's own
        methods on the first batch with a G step from here on (`matches_task`)."""
        if train_generator is None:
            train_generator = (self.batches + 1) % self.n_critic == 0
        self.batches += 1
        condition, real = self.inputs(batch)
        if self.compression:
            fake, w_bar = self.G(real)
            self.count_symbols(w_bar)
        elif self.generation:
            z = torch.randn(real.shape[0], self.task.z_dim)
            with torch.set_grad_enabled(train_generator):
                fake = self.G(z, condition)
        else:
            fake = self.G(condition)

        self.D.requires_grad_(True)
        d_real = self.d_out(condition, real)
        d_fake = self.d_out(condition, fake.detach())
        loss_d = self.gan_loss.discriminator(self.logits(d_real), self.logits(d_fake))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        result = {"loss_d": loss_d.item(), "generator_step": train_generator}
        if not train_generator:
            return result

        self.D.requires_grad_(False)
        d_fake = self.d_out(condition, fake)
        loss_adv = self.gan_loss.generator(self.logits(d_fake))
        extras = self.extra_losses(real, fake, d_fake, d_real)
        loss_g = loss_adv + sum(extras.values())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.ema is not None:
            self.update_ema()
        result["loss_g"] = loss_g.item()
        if check:
            result["matches_task"] = self.check_against_task(batch, condition, real, fake.detach(), d_fake, d_real,
                                                             extras)
        return result

    @torch.no_grad()
    def check_against_task(self, batch, condition, real, fake, d_fake, d_real, extras) -> bool:
        """Our inputs and extra losses equal the task's own `prepare` and `generator_losses`,
        and G's adversarial loss on the same d_fake the task's (generation: prepare(batch).real
        is image * 2 - 1, the condition the labels of a conditional model, else None)."""
        example = self.task.prepare(batch)
        same_inputs = torch.equal(example.real, real) and (
            torch.equal(example.condition, condition) if condition is not None else example.condition is None)
        theirs = self.task.generator_losses(example, fake, d_fake, _detach(d_real))
        mine = self.extra_losses(real, fake, d_fake, d_real)
        same_losses = theirs.keys() == mine.keys() and all(
            torch.allclose(theirs[k], mine[k], rtol=1e-6, atol=0) for k in mine)
        same_gan = torch.allclose(
            self.task.gan_loss.generator(self.task.adversarial_logits(d_fake)),
            self.gan_loss.generator(self.logits(d_fake)))
        return bool(same_inputs and same_losses and same_gan)


def _detach(output):
    if isinstance(output, torch.Tensor):
        return output.detach()
    return [_detach(o) for o in output]


def first_batch(model: str, batch: int, pairs_root: str | None) -> dict:
    datamodule = make_datamodule(model, batch, 1, pairs_root, num_workers=0)
    datamodule.setup("fit")
    return next(iter(datamodule.train_dataloader()))


def count_flops(loop: PlainLoop, batch: dict, train_generator: bool = True) -> dict:
    """FLOPs of one plain-loop batch: a D and a G step (or, train_generator False, D alone)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loop.step(batch, train_generator=train_generator)
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {"total": int(counter.get_total_flops()), "by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1]))}


def step_flops(loop: PlainLoop, batch: dict) -> dict:
    """`count_flops` of a D+G batch ("total"), and with n_critic > 1 also of a D-only batch
    and the mean per batch over a D/G cycle ("per_batch"; else the total)."""
    flops = count_flops(loop, batch)
    flops["per_batch"] = flops["total"]
    if loop.n_critic > 1:
        flops["d_only_total"] = count_flops(loop, batch, train_generator=False)["total"]
        flops["per_batch"] = ((loop.n_critic - 1) * flops["d_only_total"] + flops["total"]) / loop.n_critic
    return flops


def run_plain(model: str, batch_size: int, warmup: int, steps: int, pairs_root: str | None, flops: bool = False) -> dict:
    torch.manual_seed(0)
    task = make_task(model)
    batch = first_batch(model, batch_size, pairs_root)
    loop = PlainLoop(task)
    rss_before = rss_bytes()
    times, generator_steps, matches = [], [], None
    for i in range(warmup + steps):
        if i == warmup:
            usage = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        out = loop.step(batch, check=matches is None)
        times.append(time.perf_counter() - start)
        generator_steps.append(out["generator_step"])
        matches = out.get("matches_task", matches)
    usage = cpu_usage(usage, resource.getrusage(resource.RUSAGE_SELF), steps)
    peak = peak_rss_bytes()
    result = {"step": summary(times[warmup:], generator_steps[warmup:]), "warmup_seconds": times[:warmup],
              "step_seconds": times[warmup:], "generator_steps": generator_steps[warmup:],
              "cpu": usage, "rss_before_steps_bytes": rss_before, "peak_rss_bytes": peak,
              "matches_task_losses": matches}
    if flops:
        result["flops"] = step_flops(loop, batch)
    return result


# ---- ours: the LightningModule in a Trainer ----------------------------------------------

def step_timer(warmup: int):
    import lightning as L

    class StepTimer(L.Callback):
        """perf_counter at on_train_batch_start / on_train_batch_end of every batch; getrusage
        at the start of the first timed batch and at the end of the last."""

        def __init__(self) -> None:
            self.steps: list[float] = []
            self.generator_steps: list[bool] = []
            self.iterations: list[float] = []
            self._start: float | None = None
            self.usage = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            now = time.perf_counter()
            if self._start is not None:
                self.iterations.append(now - self._start)
            if len(self.steps) == warmup:
                self.usage = [resource.getrusage(resource.RUSAGE_SELF)]
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.steps.append(time.perf_counter() - self._start)
            self.generator_steps.append(generator_step(pl_module, batch_idx))
            self.usage[1:] = [resource.getrusage(resource.RUSAGE_SELF)]

    return StepTimer()


def generator_step(task, batch_idx: int) -> bool:
    """Whether the task's training_step takes a G step on this batch (as GANTask decides)."""
    return (batch_idx + 1) % task.n_critic == 0


def make_trainer(batches: int, callbacks: list, n_critic: int = 1):
    """A Trainer for `batches` training batches: max_steps counts optimizer steps, one D
    step per batch and one G step every n_critic-th batch."""
    import lightning as L

    return L.Trainer(
        accelerator="cpu", devices=1, precision="32-true", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, inference_mode=False, limit_val_batches=0,
        num_sanity_val_steps=0, max_steps=batches + batches // n_critic,
        log_every_n_steps=10, deterministic=False, callbacks=callbacks,
    )


def quiet() -> None:
    import logging

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_ours(model: str, batch_size: int, warmup: int, steps: int, pairs_root: str | None) -> dict:
    import lightning as L

    quiet()
    L.seed_everything(0, verbose=False)
    task = make_task(model)
    datamodule = make_datamodule(model, batch_size, warmup + steps + 1, pairs_root)
    timer = step_timer(warmup)
    trainer = make_trainer(warmup + steps, [timer], task.n_critic)
    rss_before = rss_bytes()
    trainer.fit(task, datamodule=datamodule)
    peak = peak_rss_bytes()
    times, generator_steps = timer.steps, timer.generator_steps
    return {"step": summary(times[warmup:], generator_steps[warmup:]), "warmup_seconds": times[:warmup],
            "step_seconds": times[warmup:], "generator_steps": generator_steps[warmup:],
            "iteration_seconds": timer.iterations[warmup:], "cpu": cpu_usage(*timer.usage, steps),
            "rss_before_steps_bytes": rss_before,
            "peak_rss_bytes": peak, "num_workers": datamodule.num_workers}


def run_paired(model: str, batch_size: int, warmup: int, steps: int, pairs_root: str | None,
               flops: bool = False) -> dict:
    """Ours and plain in one process, step for step: the Trainer runs the task while a
    callback runs one plain-loop step (on a second copy of the networks, its own
    optimizers and a fixed batch) beside every Trainer batch, before the batch's timed
    window on even batches and after it on odd ones. Both see the same machine at the same
    moments, so the ratio is free of the drift between separate runs."""
    import lightning as L

    quiet()
    L.seed_everything(0, verbose=False)
    task = make_task(model)
    loop = PlainLoop(make_task(model))
    plain_batch = first_batch(model, batch_size, pairs_root)
    datamodule = make_datamodule(model, batch_size, warmup + steps + 1, pairs_root)

    class Paired(L.Callback):
        """Plain step i beside Trainer batch i: with n_critic > 1 both take their G step on
        the same batches (the loop counts batches as the task counts batch_idx)."""

        def __init__(self) -> None:
            self.ours: list[float] = []
            self.plain: list[float] = []
            self.generator_steps: list[bool] = []
            self.plain_generator_steps: list[bool] = []
            self.matches = None

        def _plain_step(self) -> None:
            start = time.perf_counter()
            out = loop.step(plain_batch, check=self.matches is None)
            self.plain.append(time.perf_counter() - start)
            self.plain_generator_steps.append(out["generator_step"])
            self.matches = out.get("matches_task", self.matches)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if len(self.ours) % 2 == 0:
                self._plain_step()
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.ours.append(time.perf_counter() - self._start)
            self.generator_steps.append(generator_step(pl_module, batch_idx))
            if len(self.ours) % 2 == 0:
                self._plain_step()

    paired = Paired()
    make_trainer(warmup + steps, [paired], task.n_critic).fit(task, datamodule=datamodule)
    ours, plain = paired.ours[warmup:], paired.plain[warmup:]
    flags = paired.generator_steps[warmup:]
    result = {"ours": summary(ours, flags), "plain": summary(plain, paired.plain_generator_steps[warmup:]),
              "ours_step_seconds": ours, "plain_step_seconds": plain, "generator_steps": flags,
              "same_generator_steps": flags == paired.plain_generator_steps[warmup:],
              "warmup_seconds": {"ours": paired.ours[:warmup], "plain": paired.plain[:warmup]},
              "pair_ratios": [a / b for a, b in zip(ours, plain)], "matches_task_losses": paired.matches}
    if flops:
        result["flops"] = step_flops(loop, plain_batch)
    return result


# ---- where the time goes: torch.profiler, and Lightning's share ---------------------------

# An op's self time goes to the category of its outermost ancestor (itself included) that
# matches one of these; backward ops are the autograd nodes' evaluate_function events.
CATEGORIES = [
    (r"^Optimizer\.step#", "adam_update"),
    (r"^Optimizer\.zero_grad#", "zero_grad"),
    (r"ConvolutionBackward", "conv_backward"),
    (r"^aten::(conv2d|conv_transpose2d|convolution|_convolution|mkldnn_convolution)$", "conv_forward"),
    (r"NativeBatchNormBackward|InstanceNorm", "batch_norm_backward"),
    (r"^aten::(batch_norm|instance_norm)$", "batch_norm_forward"),
    (r"LeakyReluBackward", "leaky_relu_backward"),
    (r"^aten::leaky_relu$", "leaky_relu_forward"),
    (r"ReluBackward|ThresholdBackward", "relu_backward"),
    (r"^aten::relu$", "relu_forward"),
    (r"CatBackward", "cat_backward"),
    (r"^aten::cat$", "cat_forward (U-Net skips, D input)"),
    (r"^aten::(dropout|native_dropout|feature_dropout)$|DropoutBackward", "dropout"),
    (r"AccumulateGrad", "grad_accumulate"),
    (r"TanhBackward|^aten::tanh$", "tanh"),
    (r"^aten::(l1_loss|mse_loss|binary_cross_entropy_with_logits)$|L1Loss|MseLoss|BinaryCrossEntropy", "losses"),
]


def categorize(events, steps: int) -> dict:
    import re

    rules = [(re.compile(pattern), name) for pattern, name in CATEGORIES]
    totals: dict[str, float] = {}
    others: dict[str, float] = {}
    for event in events:
        chain, node = [], event
        while node is not None:
            chain.append(node.name)
            node = node.cpu_parent
        category = None
        for name in reversed(chain):  # outermost first
            category = next((c for rule, c in rules if rule.search(name)), None)
            if category:
                break
        self_ms = event.self_cpu_time_total / 1000 / steps
        if category is None:
            category = "other"
            others[event.name] = others.get(event.name, 0.0) + self_ms
        totals[category] = totals.get(category, 0.0) + self_ms
    whole = sum(totals.values())
    table = {k: {"ms_per_step": round(v, 2), "share": round(v / whole, 4)}
             for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    top_other = {k: round(v, 2) for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:8]}
    return {"self_cpu_ms_per_step": round(whole, 1), "by_category": table, "other_top_ms_per_step": top_other}


def top_ops(profiler, steps: int, count: int = 15) -> list[dict]:
    averages = sorted(profiler.key_averages(), key=lambda e: -e.self_cpu_time_total)
    whole = sum(e.self_cpu_time_total for e in averages)
    return [{"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total / 1000 / steps, 2),
             "share": round(e.self_cpu_time_total / whole, 4), "calls_per_step": e.count / steps}
            for e in averages[:count]]


class Stopwatch:
    """Wraps bound methods and callables; adds up their wall time by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.active = False

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if self.active:
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                    self.calls[name] = self.calls.get(name, 0) + 1
        return timed


def profile_step(model: str, batch_size: int, warmup: int, steps: int, pairs_root: str) -> dict:
    """torch.profiler over `steps` plain-loop steps and `steps` Trainer steps (after
    `warmup` each), and the wall time of Lightning's and ganforge's per-step Python parts."""
    import lightning as L
    from torch.profiler import ProfilerActivity, profile

    quiet()
    # the plain loop
    torch.manual_seed(0)
    loop = PlainLoop(make_task(model))
    batch = first_batch(model, batch_size, pairs_root)
    for _ in range(warmup):
        loop.step(batch)
    plain_times = []
    with profile(activities=[ProfilerActivity.CPU]) as plain_profiler:
        for _ in range(steps):
            start = time.perf_counter()
            loop.step(batch)
            plain_times.append(time.perf_counter() - start)
    plain_events = plain_profiler.events()
    result = {"warmup_steps": warmup, "profiled_steps": steps}
    result["plain"] = {"profiled_step_seconds": plain_times, "top_ops_by_self_cpu": top_ops(plain_profiler, steps),
                       **categorize(plain_events, steps)}
    # unprofiled plain steps, for the Lightning comparison below
    plain_clean = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loop.step(batch)
        plain_clean.append(time.perf_counter() - start)
    del loop, plain_profiler, plain_events

    # ours, with the profiler around `steps` batches after `warmup`, then `steps` batches
    # with stopwatches on the per-step Python parts
    L.seed_everything(0, verbose=False)
    task = make_task(model)
    watch = Stopwatch()
    names = ["training_step", "on_train_batch_start", "toggle_optimizer", "untoggle_optimizer", "optimizers",
             "log", "log_dict", "_finite_or_skip", "manual_backward", "_step",
             "after_generator_step", "prepare", "generate", "discriminate", "generator_losses"]
    for name in names:
        setattr(task, name, watch.wrap(name, getattr(task, name)))
    # the EMA update is ganforge.tasks.ema.update_average, called from ganforge.tasks.gan
    import ganforge.tasks.gan as gan_module

    gan_module.update_average = watch.wrap("update_average (EMA)", gan_module.update_average)

    class Window(L.Callback):
        def __init__(self) -> None:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.step_times: list[float] = []
            self.watched_times: list[float] = []
            self._warm = 0

        def on_train_start(self, trainer, pl_module) -> None:
            for optimizer in trainer.optimizers:  # the torch optimizers inside Lightning's wrappers
                optimizer.step = watch.wrap("adam_step", optimizer.step)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self._index = len(self.step_times) + len(self.watched_times) + self._warm
            if self._index == warmup:
                self.profiler.__enter__()
            watch.active = self._index >= warmup + steps
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            elapsed = time.perf_counter() - self._start
            watch.active = False
            if self._index < warmup:
                self._warm += 1
            elif self._index < warmup + steps:
                self.step_times.append(elapsed)
                if self._index == warmup + steps - 1:
                    self.profiler.__exit__(None, None, None)
            else:
                self.watched_times.append(elapsed)

    window = Window()
    datamodule = make_datamodule(model, batch_size, warmup + 2 * steps + 1, pairs_root)
    make_trainer(warmup + 2 * steps, [window], task.n_critic).fit(task, datamodule=datamodule)
    ours_events = window.profiler.events()
    result["ours"] = {"profiled_step_seconds": window.step_times,
                      "top_ops_by_self_cpu": top_ops(window.profiler, steps), **categorize(ours_events, steps)}
    watched = len(window.watched_times)
    per_step = {k: round(v / watched * 1000, 3) for k, v in sorted(watch.seconds.items(), key=lambda kv: -kv[1])}
    ms = lambda name: per_step.get(name, 0.0)  # noqa: E731
    step_ms = statistics.median(window.watched_times) * 1000
    mean_ms = statistics.mean(window.watched_times) * 1000
    plain_ms = statistics.median(plain_clean) * 1000
    lightning = {
        "toggle_untoggle": ms("toggle_optimizer") + ms("untoggle_optimizer"),
        "logging (log, log_dict)": ms("log") + ms("log_dict"),
        "nonfinite_check (_finite_or_skip)": ms("_finite_or_skip"),
        "on_train_batch_start (reseeding)": ms("on_train_batch_start"),
        "optimizers()": ms("optimizers"),
        "zero_grad + LightningOptimizer.step wrapper (_step - manual_backward - adam_step)":
            ms("_step") - ms("manual_backward") - ms("adam_step"),
        "other hooks in the batch window (window - training_step - on_train_batch_start, means)":
            mean_ms - ms("training_step") - ms("on_train_batch_start"),
    }
    result["lightning_overhead"] = {
        "watched_steps": watched,
        "ours_step_ms_median (watched)": round(step_ms, 1),
        "plain_step_ms_median (same process, unprofiled)": round(plain_ms, 1),
        "difference_ms": round(step_ms - plain_ms, 1),
        "wall_ms_per_step_by_method": per_step,
        "attributed_ms_per_step": {k: round(v, 3) for k, v in lightning.items()},
    }
    return result


# ---- the matmul reference ------------------------------------------------------------------

def matmul_gflops(size: int = MATMUL_SIZE, repeats: int = 10) -> dict:
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    for _ in range(3):
        torch.mm(a, b, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"size": size, "repeats": repeats, "median_seconds": median, "gflops_per_second": 2 * size**3 / median / 1e9}


# ---- one generation-metrics pass --------------------------------------------------------------

def run_metrics_pass(quick: bool = False) -> dict:
    """The time of GenerationTask validation as train.py runs it: the task and data built by
    ganforge.cli.prepare from `model=dcgan` (the digits: 1797 reference images, 32x32 grey),
    the config's `ganforge.quality.GenerationMetrics` callback (classifier feature space) in
    the config's Trainer, and `trainer.validate`. The classifier's one-time training (what
    the first run on a dataset does, then caches) is timed on its own first, through
    `choose_feature_space` with the callback's cache folder, so that the validations load it
    from the cache as every later run does. The first validation also extracts the reference
    set's features (train.py's validation before training); the second is what every
    validation during training costs (samples, their features, the scores). --quick: a
    256-image reference subset."""
    import hydra

    from ganforge.cli.prepare import prepare
    from ganforge.metrics import choose_feature_space

    quiet()
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-metrics-") as tmp:
        cache = Path(tmp) / "cache"
        extra = [f"callbacks.generation_metrics.cache_dir={cache}"] + (["data.reference_size=256"] if quick else [])
        cfg = compose_config_from(METRICS_PASS_OVERRIDES + extra)
        start = time.perf_counter()
        prepared = prepare(cfg)
        task, datamodule = prepared.task, prepared.datamodule
        build_seconds = time.perf_counter() - start
        callback = hydra.utils.instantiate(cfg.callbacks.generation_metrics)

        start = time.perf_counter()
        images, labels = datamodule.labelled_training_images()  # as the callback reads them, made RGB
        images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        space = choose_feature_space(callback.inception_weights, labelled_data=(images, labels),
                                     cache_dir=callback.cache_dir, features=callback.features)
        classifier_seconds = time.perf_counter() - start
        cached = {f.name: f.stat().st_mtime_ns for f in cache.glob("*.pt")}

        trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[callback], logger=False, enable_checkpointing=False,
                                          enable_progress_bar=False, default_root_dir=tmp)
        passes = []
        for _ in range(2):
            start = time.perf_counter()
            scores = trainer.validate(task, datamodule=datamodule, verbose=False)[0]
            passes.append((time.perf_counter() - start, {k: float(v) for k, v in scores.items()}))
        cache_hit = cached == {f.name: f.stat().st_mtime_ns for f in cache.glob("*.pt")} and len(cached) == 1
        return {
            "overrides": METRICS_PASS_OVERRIDES + (["data.reference_size=256"] if quick else []),
            "reference_images": len(datamodule.val_set), "val_batch_size": datamodule.val_batch_size,
            "accelerator": str(trainer.accelerator.__class__.__name__), "threads": torch.get_num_threads(),
            "build_seconds (prepare: task and data)": build_seconds,
            "classifier_training_seconds (once per dataset, then cached)": classifier_seconds,
            "classifier_training_images": int(images.shape[0]),
            "classifier_held_out_accuracy": space.extractor.held_out_accuracy,
            "first_validation_seconds (classifier from the cache, reference features, samples, scores)": passes[0][0],
            "validation_seconds (a validation during training: samples, their features, scores)": passes[1][0],
            "classifier_loaded_from_cache": cache_hit,
            "scores": passes[1][1], "same_scores_both_passes": passes[0][1] == passes[1][1],
        }


# ---- the parent: every config, each variant in its own process -----------------------------

def run_child(variant: str, config: str, model: str, batch: int, warmup: int, steps: int, pairs_root: str,
              flops: bool = False, quick: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", variant, "--model", model, "--batch", str(batch),
               "--warmup", str(warmup), "--steps", str(steps), "--pairs-root", pairs_root]
    command += (["--count-flops"] if flops else []) + (["--quick"] if quick else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{config} {variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def whole_cycles(batches: int, n_critic: int) -> int:
    """`batches` rounded up to a multiple of n_critic (whole D/G cycles)."""
    return -(-batches // n_critic) * n_critic


def run_config(name: str, model: str, batch: int, warmup: int, steps: int, rounds: int, pairs_root: str,
               n_critic: int = 1) -> dict:
    """The paired run (the overhead ratio), then `rounds` separate runs of each variant in
    fresh processes, in the order ours, plain, plain, ours, ... (peak memory, CPU use,
    and the step times once more, each variant alone). With n_critic > 1, warm-up and
    timed batches are whole D/G cycles and a "step" is one training batch (`summary`)."""
    entry = {"model": model, "batch_size": batch, "image_size": list(image_side(model)), "n_critic": n_critic,
             "warmup_steps_per_run": warmup, "timed_steps_per_paired_run": steps, "rounds": rounds,
             "load_average_before": load_average()}
    if n_critic > 1:
        entry["step_definition"] = (
            f"one training batch: a D step, and on every {n_critic}th batch a G step (and the EMA update) too; "
            "ours and plain take their G steps on the same batches. Step times (seconds_per_batch) are the "
            "mean batch time of a D/G cycle, (1 - 1/n_critic) * median(D-only batches) + 1/n_critic * "
            "median(D+G batches), each kind also reported (d_only, d_and_g); flops_per_step counts one D+G batch, "
            "GFLOP/s divides flops_per_batch (the cycle's mean) by seconds_per_batch")
    paired = run_child("paired", name, model, batch, warmup, steps, pairs_root, flops=True)
    flops = paired.pop("flops")
    entry["paired"] = paired
    runs: dict[str, list[dict]] = {"ours": [], "plain": []}
    # these runs are for memory and CPU use: half the steps (whole cycles)
    alone_steps = whole_cycles((steps + 1) // 2, n_critic)
    entry["timed_steps_per_alone_run"] = alone_steps
    for r in range(rounds):
        for variant in ("ours", "plain") if r % 2 == 0 else ("plain", "ours"):
            runs[variant].append(run_child(variant, name, model, batch, warmup, alone_steps, pairs_root))
    entry["load_average_after"] = load_average()
    for variant, done in runs.items():
        alone = {"step": summary([t for run in done for t in run["step_seconds"]],
                                 [g for run in done for g in run["generator_steps"]]),
                 "seconds_per_batch_per_run": [run["step"]["seconds_per_batch"] for run in done],
                 "cpu_per_step": {k: statistics.mean(run["cpu"][k] for run in done) for k in done[0]["cpu"]},
                 "peak_rss_bytes": max(run["peak_rss_bytes"] for run in done),
                 "rss_before_steps_bytes": max(run["rss_before_steps_bytes"] for run in done)}
        if variant == "ours":
            alone["iteration"] = summary([t for run in done for t in run["iteration_seconds"]])
            alone["num_workers"] = done[0]["num_workers"]
        else:
            alone["matches_task_losses"] = all(run["matches_task_losses"] for run in done)
        alone["runs"] = done
        entry[f"{variant}_alone"] = alone
    entry["flops_per_step"] = flops["total"]
    entry["flops_per_batch"] = flops["per_batch"]
    if "d_only_total" in flops:
        entry["flops_per_d_only_batch"] = flops["d_only_total"]
    entry["flops_by_op"] = flops["by_op"]
    ours, plain = paired["ours"]["seconds_per_batch"], paired["plain"]["seconds_per_batch"]
    entry["matches_task_losses"] = bool(paired["matches_task_losses"] and entry["plain_alone"]["matches_task_losses"])
    entry["overhead_ratio_ours_over_plain"] = ours / plain
    entry["median_pair_ratio"] = statistics.median(paired["pair_ratios"])
    if n_critic > 1:
        for kind, flag in (("d_only", False), ("d_and_g", True)):
            ratios = [r for r, g in zip(paired["pair_ratios"], paired["generator_steps"]) if g == flag]
            entry[f"median_pair_ratio_{kind}"] = statistics.median(ratios) if ratios else None
    entry["overhead_ratio_separate_runs"] = (entry["ours_alone"]["step"]["seconds_per_batch"]
                                             / entry["plain_alone"]["step"]["seconds_per_batch"])
    entry["ours_gflops_per_second"] = flops["per_batch"] / ours / 1e9
    entry["plain_gflops_per_second"] = flops["per_batch"] / plain / 1e9
    return entry


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--warmup", type=int, help="warm-up steps (default: per config)")
    parser.add_argument("--steps", type=int, help="timed steps (default: per config)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="separate runs of each variant per config (memory; ABBA order)")
    parser.add_argument("--quick", action="store_true", help="tiny networks and images: a smoke run")
    parser.add_argument("--profile", action="store_true", help="profile one config's step instead (JSON)")
    parser.add_argument("--config", choices=list(CONFIGS), default="pix2pix_b4", help="the config --profile runs")
    parser.add_argument("--metrics-pass", action="store_true",
                        help="only time one generation-metrics validation (the runs with dcgan/sngan configs add it)")
    parser.add_argument("--child", choices=["ours", "plain", "paired", "metrics"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pairs-root", help=argparse.SUPPRESS)
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child == "metrics":
            result = run_metrics_pass(args.quick)
        elif args.child == "ours":
            result = run_ours(args.model, args.batch, args.warmup, args.steps, args.pairs_root)
        elif args.child == "paired":
            result = run_paired(args.model, args.batch, args.warmup, args.steps, args.pairs_root, args.count_flops)
        else:
            result = run_plain(args.model, args.batch, args.warmup, args.steps, args.pairs_root, args.count_flops)
        print(json.dumps(result))
        return
    table = QUICK if args.quick else CONFIGS
    if args.metrics_pass:
        print(json.dumps(run_child("metrics", "metrics pass", "dcgan", 0, 0, 0, "", quick=args.quick), indent=2))
        return
    if args.profile:
        model, batch, _, _ = table[args.config]
        with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as tmp:
            warmup, steps = args.warmup if args.warmup is not None else 2, args.steps or 2
            root = make_data(model, Path(tmp), batch * (warmup + 2 * steps + 1))
            result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "config": args.config,
                      "model": model, "batch_size": batch, "load_average_before": load_average()}
            result.update(profile_step(model, batch, warmup, steps, str(root)))
            result["load_average_after"] = load_average()
        print(json.dumps(result, indent=2))
        return

    results = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "quick": args.quick, "load_average_start": load_average(), "matmul_start": matmul_gflops(),
        "configs": {},
    }
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as tmp:
        plans = {}  # name -> (model, batch, warm-up, timed steps, n_critic): whole D/G cycles
        for name in args.configs:
            model, batch, warmup, steps = table[name]
            n_critic = n_critic_of(model) if model in GENERATION_MODELS else 1
            warmup = whole_cycles(args.warmup if args.warmup is not None else warmup, n_critic)
            plans[name] = (model, batch, warmup, whole_cycles(args.steps or steps, n_critic), n_critic)
        roots = {}  # one data folder per kind, as large as its largest config needs (one epoch)
        for kind, models in (("pairs", ("pix2pix", "pix2pix_quick")), ("classes", GENERATION_MODELS)):
            chosen = [(m, b * (w + n + 2)) for m, b, w, n, _ in plans.values() if m in models]
            if chosen:
                roots[kind] = make_data(chosen[0][0], Path(tmp), max(count for _, count in chosen))
        for name, (model, batch, warmup, steps, n_critic) in plans.items():
            root = roots.get("classes" if model in GENERATION_MODELS else "pairs", Path(tmp))  # compression: unused
            results["configs"][name] = run_config(name, model, batch, warmup, steps, args.rounds, str(root), n_critic)
    if any(plan[0] in GENERATION_MODELS for plan in plans.values()):
        results["generation_metrics_pass"] = run_child("metrics", "metrics pass", "dcgan", 0, 0, 0, "",
                                                       quick=args.quick)
    results["matmul_end"] = matmul_gflops()
    results["load_average_end"] = load_average()
    # the practical limit: the better of the two (the slower one saw more interference)
    matmul = max(results["matmul_start"]["gflops_per_second"], results["matmul_end"]["gflops_per_second"])
    results["matmul_gflops_per_second"] = matmul
    for entry in results["configs"].values():
        entry["ours_fraction_of_matmul"] = entry["ours_gflops_per_second"] / matmul
        entry["plain_fraction_of_matmul"] = entry["plain_gflops_per_second"] / matmul
    configs = results["configs"]
    results["targets"] = {
        "overhead_ratio_le_1.03 (paired)": {k: v["overhead_ratio_ours_over_plain"] <= 1.03 for k, v in configs.items()},
        "pix2pix_fraction_of_matmul_ge_0.45": {k: v["ours_fraction_of_matmul"] >= 0.45
                                                for k, v in configs.items() if v["model"].startswith("pix2pix")},
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
