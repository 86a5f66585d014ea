import copy

import lightning as L
import pytest
import torch
from torch import nn

from ganforge.data import SampleDataModule
from ganforge.errors import ConfigError
from ganforge.losses import GAN_LOSSES
from ganforge.tasks import Pix2PixTask, network_part

TINY_G = {"num_downs": 5, "ngf": 4}
TINY_D = {"ndf": 4, "n_layers": 2}


def tiny_data(batches: int = 2) -> SampleDataModule:
    return SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=4 * batches, batch_size=4, max_val_crops_per_image=2)


def fit(task: Pix2PixTask, batches: int = 2, epochs: int = 1) -> L.Trainer:
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1, num_sanity_val_steps=0,
        inference_mode=False,
    )
    trainer.fit(task, datamodule=tiny_data(batches))
    return trainer


def changed(before: nn.Module, after: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))


def test_one_batch_updates_both_networks_and_logs_every_loss():
    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D)
    g0, d0 = copy.deepcopy(task.generator), copy.deepcopy(task.discriminator)
    trainer = fit(task, batches=1)
    assert changed(g0, task.generator) and changed(d0, task.discriminator)
    logged = set(trainer.callback_metrics)
    assert {"train/loss_d", "train/loss_g", "train/loss_g_adv", "train/loss_g_l1", "val/psnr", "val/ssim", "val/l1"} <= logged
    # lambda_L1 = 100 weights the L1 term.
    assert trainer.callback_metrics["train/loss_g"] == pytest.approx(
        (trainer.callback_metrics["train/loss_g_adv"] + trainer.callback_metrics["train/loss_g_l1"]).item(), rel=1e-5
    )


def test_n_critic_steps_the_discriminator_more_often():
    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D, n_critic=2)
    steps = {"g": 0, "d": 0}
    original = task.configure_optimizers

    def counting():
        opt_g, opt_d = original()
        opt_g.register_step_post_hook(lambda *a: steps.__setitem__("g", steps["g"] + 1))
        opt_d.register_step_post_hook(lambda *a: steps.__setitem__("d", steps["d"] + 1))
        return [opt_g, opt_d]

    task.configure_optimizers = counting
    fit(task, batches=4)
    assert steps == {"d": 4, "g": 2}


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_every_gan_loss_trains_with_finite_losses(kind):
    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D, gan_loss={"kind": kind}, norm="instance")
    trainer = fit(task, batches=2)
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss_d"]) and torch.isfinite(metrics["train/loss_g"])
    assert ("train/loss_d_gp" in metrics) == (kind == "wgan_gp")


def test_per_network_norm_and_act_override_the_shared_group():
    task = Pix2PixTask(
        generator={**TINY_G, "act": "elu"}, discriminator={**TINY_D, "norm": "spectral"},
        norm={"kind": "batch", "n_power_iterations": 3, "eps": 1e-8}, act={"kind": "paper"},
    )
    assert any(isinstance(m, nn.BatchNorm2d) for m in task.generator.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in task.discriminator.modules())
    spectral = [m for m in task.discriminator.modules() if hasattr(m, "parametrizations")]
    assert spectral and all(m.parametrizations.weight[0].n_power_iterations == 3 for m in spectral)
    assert {type(m) for m in task.generator.modules() if isinstance(m, (nn.ELU, nn.ReLU, nn.LeakyReLU))} == {nn.ELU}
    assert {type(m) for m in task.discriminator.modules() if isinstance(m, (nn.ELU, nn.LeakyReLU))} == {nn.LeakyReLU}


def test_network_part_merges_names_and_mappings():
    shared = {"kind": "lrelu", "slope": 0.1, "alpha": 1.0}
    assert network_part(shared, None) is shared
    assert network_part(shared, "elu") == {"kind": "elu", "slope": 0.1, "alpha": 1.0}
    assert network_part(shared, {"slope": 0.3}) == {"kind": "lrelu", "slope": 0.3, "alpha": 1.0}


def test_linear_decay_follows_the_pix2pix_policy():
    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D, lr_decay={"start_epoch": 1, "epochs": 3})
    fit(task, batches=1, epochs=3)
    opt_g, opt_d = task.optimizers()
    # After 3 epochs the factor is 1 - (3 - 1) / (3 + 1) = 0.5.
    assert opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5)


def test_gradient_clipping_bounds_every_gradient():
    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D, grad_clip={"value": 1e-4, "algorithm": "value"})
    largest = []
    original = task.configure_optimizers

    def recording():
        optimizers = original()
        for opt in optimizers:
            opt.register_step_pre_hook(
                lambda o, *a: largest.append(max(p.grad.abs().max().item() for g in o.param_groups
                                                 for p in g["params"] if p.grad is not None))
            )
        return optimizers

    task.configure_optimizers = recording
    fit(task, batches=2)
    assert largest and max(largest) <= 1e-4 + 1e-12


def test_paired_task_translates_rgb(paired_folder):
    from ganforge.data import PairedDataModule

    task = Pix2PixTask(data_kind="pairs", generator=TINY_G, discriminator=TINY_D)
    assert task.generator.down[0][0].in_channels == 3 and task.discriminator.blocks[0][0].in_channels == 6
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, inference_mode=False)
    trainer.fit(task, datamodule=PairedDataModule(root=str(paired_folder), crop_size=32, load_size=36, batch_size=2))
    assert "val/psnr" in trainer.callback_metrics and "val/psnr_gray" not in trainer.callback_metrics


def test_sample_images_are_rgb_rows():
    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D).eval()
    rows = task.sample_images({"image": torch.rand(2, 3, 32, 32)})
    assert list(rows) == ["input", "output", "target"]
    assert all(r.shape == (2, 3, 32, 32) and r.min() >= 0 and r.max() <= 1 for r in rows.values())
    # The input row is the lightness as grey: equal channels.
    torch.testing.assert_close(rows["input"][:, 0], rows["input"][:, 2])


@pytest.mark.parametrize("kwargs, words", [
    ({"lambda_l1": -1}, "model.lambda_l1 must be a number >= 0"),
    ({"optim": {"lr_g": -0.1}}, "model.optim.lr_g must be a number > 0"),
    ({"optim": {"lr": 0.1}}, "unknown model.optim option(s) ['lr']"),
    ({"n_critic": 0}, "model.n_critic must be an integer >= 1"),
    ({"data_kind": "video"}, "model.data_kind must be one of images, pairs"),
    ({"generator": {"ngff": 3}}, "unknown option in model.generator"),
])
def test_bad_task_settings_are_named(kwargs, words):
    with pytest.raises(ConfigError) as error:
        Pix2PixTask(**{"generator": TINY_G, "discriminator": TINY_D, **kwargs})
    assert words in str(error.value)


def test_ema_follows_the_warmed_up_average_and_is_checkpointed(tmp_path):
    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D, ema_decay=0.999)
    initial = copy.deepcopy(task.generator)
    trainer = fit(task, batches=1)
    # One generator step: decay = min(0.999, (1 + 0) / (10 + 0)) = 0.1.
    for average, start, now in zip(task.generator_ema.parameters(), initial.parameters(), task.generator.parameters()):
        torch.testing.assert_close(average, 0.1 * start + 0.9 * now)
    for average, now in zip(task.generator_ema.buffers(), task.generator.buffers()):
        torch.testing.assert_close(average, now)
    assert task.inference_generator is task.generator_ema
    path = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(path)
    restored = Pix2PixTask.load_from_checkpoint(path)
    for a, b in zip(restored.generator_ema.state_dict().values(), task.generator_ema.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert int(restored.ema_updates) == 1


def test_sample_grid_handles_whole_validation_images_of_different_sizes(tmp_path, image_folder):
    from PIL import Image

    from ganforge.callbacks import SampleGrid
    from ganforge.data import FolderDataModule
    from tests.conftest import write_image

    write_image(image_folder / "wide.png", (96, 64), seed=5)  # a different size among the 80x60 ones
    data = FolderDataModule(root=str(image_folder), crop_size=32, samples_per_epoch=4, batch_size=2,
                            val_fraction=0.5, val_full_images=True, num_workers=0)
    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D)
    grid = SampleGrid(str(tmp_path / "samples"), every_n_steps=1, num_images=4)
    L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, inference_mode=False, callbacks=[grid]).fit(task, datamodule=data)
    written = sorted((tmp_path / "samples").glob("*.png"))
    assert written
    with Image.open(written[-1]) as picture:
        assert picture.size[1] == 3 * (60 + 2) + 2  # input, output, target rows of the 80x60 images
