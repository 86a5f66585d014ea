import copy
import math

import lightning as L
import pytest
import torch

from ganforge.data import SampleDataModule
from ganforge.errors import ConfigError
from ganforge.tasks import CompressionTask

TINY = {
    "bottleneck": 4,
    "generator": {"width": 0.05, "residual_blocks": 1},
    "discriminator": {"scales": 2, "ndf": 4, "n_layers": 2},
}


def tiny_data() -> SampleDataModule:
    return SampleDataModule(crop_size=48, scale=0.25, samples_per_epoch=4, batch_size=2, val_full_images=True,
                            val_images=["chelsea"])


def fit(task: CompressionTask, epochs: int = 1) -> L.Trainer:
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, inference_mode=False)
    trainer.fit(task, datamodule=tiny_data())
    return trainer


def test_training_updates_everything_and_logs_the_rate():
    task = CompressionTask(**TINY, quantizer={"centers": [-1, 0, 1]})
    encoder = copy.deepcopy(task.generator.encoder)
    trainer = fit(task)
    assert any(not torch.equal(a, b) for a, b in zip(encoder.parameters(), task.generator.encoder.parameters()))
    metrics = trainer.callback_metrics
    assert metrics["val/bpp_bound"].item() == pytest.approx(4 * math.log2(3) / 256)
    assert 0 < metrics["val/bpp_entropy"].item() <= metrics["val/bpp_bound"].item() + 1e-6
    assert {"train/loss_g_mse", "train/loss_g_fm", "val/psnr", "val/ssim"} <= set(metrics)
    # chelsea at scale 0.25 is 75x113: too small for MS-SSIM's five scales, so it is not logged.
    assert "val/ms_ssim" not in metrics


def test_every_encoder_parameter_gets_a_gradient_from_the_generator_loss():
    torch.manual_seed(0)
    task = CompressionTask(**TINY)
    batch = {"image": torch.rand(2, 3, 64, 64)}
    example = task.prepare(batch)
    fake = task.generate(example, task.generator)
    d_fake = task.discriminate(example, fake, task.discriminator)
    d_real = task.discriminate(example, example.real, task.discriminator)
    loss = task.gan_loss.generator(task.adversarial_logits(d_fake)) + sum(
        task.generator_losses(example, fake, d_fake, [[f.detach() for f in s] for s in d_real]).values()
    )
    loss.backward()
    for name, parameter in task.generator.encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_learnable_centers_train_and_stay_sorted():
    task = CompressionTask(**TINY, quantizer={"centers": [-2, -1, 0, 1, 2], "learnable": True})
    before = task.generator.quantizer.centers.detach().clone()
    fit(task)
    after = task.generator.quantizer.centers.detach()
    assert not torch.equal(before, after)
    assert torch.all(after[1:] > after[:-1])


def test_conditional_discriminator_sees_the_latent():
    task = CompressionTask(**{**TINY, "discriminator": {**TINY["discriminator"], "conditional": True}})
    assert task.discriminator.discriminators[0].blocks[0][0].in_channels == 3 + 4
    fit(task)


def test_noise_and_full_image_validation_pad_and_crop_back():
    task = CompressionTask(**{**TINY, "generator": {**TINY["generator"], "sample_noise": True, "noise_dim": 4,
                                                      "noise_channels": 16}})
    task.eval()
    rows = task.sample_images({"image": torch.rand(1, 3, 75, 113)})
    assert all(r.shape == (1, 3, 75, 113) for r in rows.values())
    assert list(rows) == ["output", "target"]


@pytest.mark.parametrize("kwargs, words", [
    ({"quantizer": {"centers": [0, 0, 1]}}, "duplicates"),
    ({"quantizer": {"centers": [-1, 1], "temperature": -1}}, "quantizer.temperature must be a number > 0"),
    ({"quantizer": {"centres": [-1, 1]}}, "unknown quantizer option(s) ['centres']"),
    ({"lambda_fm": -1}, "model.lambda_fm must be a number >= 0"),
    ({"data_kind": "pairs"}, "model.data_kind must be one of images"),
    ({"generator": {"widht": 1}}, "unknown option in model.generator"),
])
def test_bad_settings_are_named(kwargs, words):
    with pytest.raises(ConfigError) as error:
        CompressionTask(**{**TINY, **kwargs})
    assert words in str(error.value)


def test_sides_that_are_not_multiples_of_16_are_refused_in_training():
    task = CompressionTask(**TINY)
    with pytest.raises(ConfigError, match="multiples of 16"):
        task.generate(task.prepare({"image": torch.rand(1, 3, 40, 40)}), task.generator)


def test_symbol_counts_cover_the_last_training_epoch():
    task = CompressionTask(**TINY)
    fit(task, epochs=2)
    # 2 batches of 2 crops of 48x48 per epoch: 3x3 latents, so 36 symbols per channel.
    # Counts are given the symbol above: index 5 (none above) holds the first rows' 2 * 2 * 3.
    assert task.symbol_counts.shape == (4, 6, 5)
    assert task.symbol_counts.sum(dim=(1, 2)).tolist() == [36] * 4
    assert task.symbol_counts[:, 5].sum(dim=1).tolist() == [12] * 4
