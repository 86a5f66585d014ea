"""What the benches share: the tasks and data of each benchmarked model, composed from the
real configs in conf/; synthetic data folders; step-time summaries; process measures
(memory, CPU time, load); the matmul reference; a quiet Trainer.

Imported by bench/train_step.py, bench/step_profile.py, bench/metrics_pass.py and
bench/data.py (a script's own folder is first on sys.path).
"""

from __future__ import annotations

import os
import resource
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MATMUL_SIZE = 2048

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


def first_batch(model: str, batch: int, pairs_root: str | None) -> dict:
    datamodule = make_datamodule(model, batch, 1, pairs_root, num_workers=0)
    datamodule.setup("fit")
    return next(iter(datamodule.train_dataloader()))


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


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]



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

