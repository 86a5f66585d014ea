"""The generation family on the shared loop: what a batch becomes, codes keyed by position,
samples that repeat, conditional models checked, a short fit that changes the weights."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from ganforge.data import DigitsDataModule
from ganforge.errors import ConfigError
from ganforge.tasks import GenerationTask
from ganforge.tasks.generation import latent_codes

TINY = {"image_channels": 1, "generator": {"base_channels": 16}, "discriminator": {"base_channels": 8},
        "z_dim": 8, "gan_loss": {"kind": "hinge"}}


def tiny(**options) -> GenerationTask:
    torch.manual_seed(0)
    return GenerationTask(**{**TINY, **options})


def varied(task: GenerationTask) -> GenerationTask:
    """An untrained G in eval mode makes a near-constant grey (N(0, 0.02) weights): give its
    weights a spread, so that different codes and classes give visibly different samples."""
    with torch.no_grad():
        for parameter in task.generator.parameters():
            parameter.normal_(0, 0.5)
    return task


def test_latent_codes_depend_on_the_key_and_seed_only():
    a = latent_codes(torch.tensor([3, 7, 11]), 8, seed=0)
    b = latent_codes(torch.tensor([11, 3]), 8, seed=0)
    assert torch.equal(a[0], b[1]) and torch.equal(a[2], b[0])
    assert not torch.equal(a, latent_codes(torch.tensor([3, 7, 11]), 8, seed=1))
    assert a.shape == (3, 8) and abs(float(latent_codes(torch.arange(2000), 8, 0).std()) - 1) < 0.05


def test_validation_makes_one_sample_per_reference_image_keyed_by_its_index():
    task = varied(tiny()).eval()
    images = torch.rand(4, 1, 32, 32)
    batch = {"image": images, "label": torch.tensor([0, 1, 2, 3]), "index": torch.tensor([10, 11, 12, 13])}
    _, fake, real = task.validation_images(batch)
    assert fake.shape == real.shape == (4, 3, 32, 32)  # RGB for the metrics, grey replicated
    torch.testing.assert_close(real[:, 0], images[:, 0])
    # The same index gives the same sample in another batch (another process, another order).
    _, again, _ = task.validation_images({"image": images[2:3], "index": torch.tensor([12])})
    torch.testing.assert_close(again[0], fake[2])


def test_samples_repeat_for_a_seed_and_follow_the_label():
    task = varied(tiny(conditional=True, num_classes=10)).eval()
    first = task.sample(5, seed=3)
    torch.testing.assert_close(task.sample(5, seed=3), first)
    torch.testing.assert_close(task.sample(2, seed=3, first=3), first[3:])
    assert not torch.equal(task.sample(5, seed=4), first)
    sevens = task.sample(5, seed=3, label=7)
    assert sevens.shape == (5, 3, 32, 32) and not torch.equal(sevens, first)
    with pytest.raises(ConfigError, match=r"predict.label=10 is not a class of this model: choose 0 .. 9"):
        task.sample(1, label=10)
    with pytest.raises(ConfigError, match="predict.num_samples must be an integer >= 1"):
        task.sample(0)
    with pytest.raises(ConfigError, match="needs a class-conditional model"):
        tiny().sample(1, label=3)


def test_a_conditional_model_needs_labelled_data():
    with pytest.raises(ConfigError, match="model.conditional=true needs data with class labels"):
        tiny(conditional=True, num_classes=None)
    task = tiny(conditional=True, num_classes=10)
    with pytest.raises(ConfigError, match="needs data with class labels"):
        task.prepare({"image": torch.rand(2, 1, 32, 32)})


def test_the_images_must_fit_the_model():
    with pytest.raises(ConfigError, match="have 3 channel.*set data.channels"):
        tiny().prepare({"image": torch.rand(2, 3, 32, 32)})
    with pytest.raises(ConfigError, match=r"are \(64, 64\).*data.image_size=32"):
        tiny().prepare({"image": torch.rand(2, 1, 64, 64)})


def test_a_grid_of_a_conditional_model_has_a_row_per_class_with_the_same_codes():
    task = tiny(conditional=True, num_classes=10).eval()
    rows = task.sample_images({"image": torch.zeros(6, 1, 32, 32)})
    assert list(rows) == [f"class {c}" for c in range(10)]
    assert all(row.shape == (6, 3, 32, 32) for row in rows.values())
    assert len(tiny().eval().sample_images({"image": torch.zeros(6, 1, 32, 32)})) == 4


@pytest.mark.parametrize("architecture, widths", [("dcgan", {}), ("resnet", {"generator": {"channels": 16},
                                                                          "discriminator": {"channels": 16}})])
@pytest.mark.parametrize("conditional", [False, True])
def test_a_short_fit_on_the_digits_trains_both_networks(architecture, widths, conditional):
    task = tiny(architecture=architecture, conditional=conditional, num_classes=10, **widths)
    before = {k: v.clone() for k, v in task.state_dict().items()}
    data = DigitsDataModule(batch_size=16, reference_size=32)
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(accelerator="cpu", max_steps=6, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, inference_mode=False,
                        limit_val_batches=0)
    trainer.fit(task, datamodule=data)
    after = task.state_dict()
    for prefix in ("generator.", "discriminator."):
        assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith(prefix)), prefix
    assert {"train/loss_d", "train/loss_g"} <= set(trainer.callback_metrics)
