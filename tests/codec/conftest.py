from pathlib import Path

import lightning as L
import pytest

from ganforge.data import SampleDataModule
from ganforge.tasks import CompressionTask, Pix2PixTask

TINY = {
    "bottleneck": 4,
    "generator": {"width": 0.05, "residual_blocks": 1},
    "discriminator": {"scales": 2, "ndf": 4, "n_layers": 2},
}


def train_and_save(task, path: Path, data: SampleDataModule) -> Path:
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
    return train_and_save(CompressionTask(**TINY), path, data)


@pytest.fixture(scope="session")
def noisy_checkpoint(tmp_path_factory) -> Path:
    data = SampleDataModule(crop_size=48, scale=0.25, samples_per_epoch=4, batch_size=2)
    task = CompressionTask(**{**TINY, "generator": {**TINY["generator"], "sample_noise": True, "noise_dim": 4,
                                                      "noise_channels": 16}})
    return train_and_save(task, tmp_path_factory.mktemp("ckpt") / "noisy.ckpt", data)


@pytest.fixture(scope="session")
def pix2pix_checkpoint(tmp_path_factory) -> Path:
    data = SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=4, batch_size=2)
    task = Pix2PixTask(generator={"num_downs": 5, "ngf": 4}, discriminator={"ndf": 4, "n_layers": 2})
    return train_and_save(task, tmp_path_factory.mktemp("ckpt") / "pix2pix.ckpt", data)
