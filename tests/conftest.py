import os
from pathlib import Path

import lightning as L
import numpy as np
import pytest
from PIL import Image

from ganforge.data import SampleDataModule
from ganforge.tasks import CompressionTask, GenerationTask, Pix2PixTask

# Never let a test reach the network or ask for a W&B login.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def write_image(path: Path, size=(40, 30), mode="RGB", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    width, height = size
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Five 80x60 RGB photos-to-be of random noise, one grey, one RGBA, in nested folders."""
    root = tmp_path / "images"
    for i in range(3):
        write_image(root / f"rgb_{i}.png", (80, 60), seed=i)
    write_image(root / "sub" / "grey.jpg", (80, 60), mode="L", seed=7)
    write_image(root / "sub" / "alpha.png", (80, 60), mode="RGBA", seed=8)
    return root


@pytest.fixture
def paired_folder(tmp_path: Path) -> Path:
    """pix2pix's aligned layout: train/ and val/ with 64x32 A|B images, A = B inverted."""
    root = tmp_path / "pairs"
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for i in range(count):
            b = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            pair = np.concatenate([255 - b, b], axis=1)
            (root / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pair).save(root / split / f"{i}.png")
    return root


# Checkpoints of tiny trained models, shared by the codec, CLI and export tests.
TINY_COMPRESSION = {
    "bottleneck": 4,
    "generator": {"width": 0.05, "residual_blocks": 1},
    "discriminator": {"scales": 2, "ndf": 4, "n_layers": 2},
}


def train_and_save(task, path: Path, data) -> Path:
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, inference_mode=False,
                        limit_val_batches=0)
    trainer.fit(task, datamodule=data)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="session")
def compression_checkpoint(tmp_path_factory) -> Path:
    """A tiny compression model trained for 2 batches, with its symbol statistics."""
    data = SampleDataModule(crop_size=48, scale=0.25, samples_per_epoch=4, batch_size=2)
    path = tmp_path_factory.mktemp("ckpt") / "compression.ckpt"
    return train_and_save(CompressionTask(**TINY_COMPRESSION), path, data)


@pytest.fixture(scope="session")
def noisy_checkpoint(tmp_path_factory) -> Path:
    data = SampleDataModule(crop_size=48, scale=0.25, samples_per_epoch=4, batch_size=2)
    noisy = {**TINY_COMPRESSION["generator"], "sample_noise": True, "noise_dim": 4, "noise_channels": 16}
    task = CompressionTask(**{**TINY_COMPRESSION, "generator": noisy})
    return train_and_save(task, tmp_path_factory.mktemp("ckpt") / "noisy.ckpt", data)


@pytest.fixture(scope="session")
def pix2pix_checkpoint(tmp_path_factory) -> Path:
    data = SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=4, batch_size=2)
    task = Pix2PixTask(generator={"num_downs": 5, "ngf": 4}, discriminator={"ndf": 4, "n_layers": 2})
    return train_and_save(task, tmp_path_factory.mktemp("ckpt") / "pix2pix.ckpt", data)


@pytest.fixture(scope="session")
def pix2pix_dropout_checkpoint(tmp_path_factory) -> Path:
    """pix2pix with batch norm, dropout and a moving average of G: the parts that make a
    generator behave differently in train and eval mode."""
    data = SampleDataModule(crop_size=64, scale=0.25, samples_per_epoch=4, batch_size=2)
    task = Pix2PixTask(generator={"num_downs": 6, "ngf": 4, "dropout": 0.5}, discriminator={"ndf": 4, "n_layers": 2},
                       norm="batch", ema_decay=0.9)
    return train_and_save(task, tmp_path_factory.mktemp("ckpt") / "pix2pix_dropout.ckpt", data)


@pytest.fixture(scope="session")
def generation_checkpoint(tmp_path_factory) -> Path:
    """A tiny class-conditional DCGAN trained for 4 batches of the bundled digits."""
    from ganforge.data import DigitsDataModule

    task = GenerationTask(image_channels=1, conditional=True, num_classes=10, z_dim=8,
                          generator={"base_channels": 16}, discriminator={"base_channels": 8})
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=4, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        inference_mode=False)
    trainer.fit(task, datamodule=DigitsDataModule(batch_size=16, reference_size=32))
    path = tmp_path_factory.mktemp("ckpt") / "generation.ckpt"
    trainer.save_checkpoint(path)
    return path
