"""The real config, composed with Hydra as train.py composes it."""


import types

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ganforge.cli import CONFIG_DIR
from ganforge.cli.prepare import check_image_sizes
from ganforge.cli.schema import check_config
from ganforge.data import SampleDataModule
from ganforge.errors import ConfigError


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def composed(*overrides: str, config: str = "train"):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        paths = ["paths.output_dir=/tmp/unused"] if config != "predict" else []
        return compose(config_name=config, overrides=[*paths, *overrides])


def test_default_is_the_cpu_pix2pix_colorization_demo():
    cfg = composed()
    assert cfg.model._target_ == "ganforge.tasks.Pix2PixTask"
    assert cfg.data._target_ == "ganforge.data.SampleDataModule"
    # The CPU demo model brings instance norm; the paper-size pix2pix keeps batch norm.
    assert (cfg.norm.kind, cfg.act.kind, cfg.gan_loss.kind) == ("instance", "paper", "vanilla")
    assert composed("model=pix2pix").norm.kind == "batch"
    assert composed("norm=batch").model.norm.kind == "batch"
    assert set(cfg.logger) == {"wandb", "csv"} and cfg.logger.wandb.offline is True


@pytest.mark.parametrize("group", ["norm", "act", "penalty", "gan_loss", "augment", "data", "logger", "trainer", "model",
                                   "debug"])
def test_every_option_of_every_group_composes_and_resolves(group):
    found = options(group)
    assert found
    for option in found:
        cfg = composed(f"{group}={option}")
        OmegaConf.to_container(cfg, resolve=True)


def test_wgan_gp_is_the_wasserstein_loss_with_the_gp_penalty_and_the_command_line_wins():
    cfg = composed("gan_loss=wgan_gp")
    assert cfg.gan_loss.kind == "wgan" and (cfg.penalty.kind, cfg.penalty.weight) == ("gp", 10.0)
    assert composed("gan_loss=wgan_gp", "penalty=r1").penalty.kind == "r1"
    assert composed("gan_loss=wgan_gp", "penalty.weight=1").penalty.weight == 1
    assert composed("penalty=r1", "gan_loss=wgan_gp").penalty.kind == "r1"  # in either order
    assert (composed().penalty.kind, composed("gan_loss=wgan").penalty.kind, composed().augment.kind) == (
        "none", "none", "none")
    augment = composed("augment=diffaugment", "augment.policy=[color,cutout]").augment
    assert list(augment.policy) == ["color", "cutout"] and augment.translation_ratio == 0.125


def test_every_penalty_and_augment_option_builds():
    from ganforge.nn.augment import make_augment
    from ganforge.penalties import make_penalty

    for option in options("penalty"):
        penalty = make_penalty(**OmegaConf.to_container(composed(f"penalty={option}").penalty))
        assert penalty.kind == option
    assert make_penalty(**OmegaConf.to_container(composed("penalty=dragan").penalty)).clip == (-1.0, 1.0)
    for option in options("augment"):
        augment = make_augment(**OmegaConf.to_container(composed(f"augment={option}").augment))
        assert augment.enabled == (option != "none")


def test_one_norm_switch_reaches_every_network():
    cfg = composed("norm=spectral")
    task = hydra.utils.instantiate(cfg.model, _convert_="all")
    for network in (task.generator, task.discriminator):
        convs = [m for m in network.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
        assert convs and all(hasattr(m, "parametrizations") for m in convs)


def test_the_data_kind_sets_the_channels():
    task = hydra.utils.instantiate(composed().model, _convert_="all")
    assert task.generator.down[0][0].in_channels == 1 and task.generator.up[0][1].out_channels == 2
    paired = hydra.utils.instantiate(composed("data=paired", "data.root=/x").model, _convert_="all")
    assert paired.generator.down[0][0].in_channels == 3 and paired.discriminator.blocks[0][0].in_channels == 6


def test_paper_size_model_is_the_reference_unet_256():
    task = hydra.utils.instantiate(composed("model=pix2pix", "data=paired", "data.root=/x").model, _convert_="all")
    assert sum(p.numel() for p in task.generator.parameters()) == 54_413_955


@pytest.mark.parametrize("group", ["data", "logger", "trainer", "callbacks", "debug", "model"])
def test_every_option_of_every_group_passes_the_schema(group):
    """Each shipped option fits the signatures of what it builds (Lightning's Trainer, the
    loggers, callbacks, DataModules; the model's keys)."""
    for option in options(group):
        root = ["data.root=/x"] if group == "data" and "root" in composed(f"data={option}").data else []
        check_config(composed(f"{group}={option}", *root))


@pytest.mark.parametrize("config", ["eval", "predict"])
def test_the_other_commands_configs_pass_the_schema(config):
    check_config(composed(*(["data=sample"] if config == "eval" else []), config=config))


def _build_on_meta(cfg):
    """The task `cfg` describes, built on the meta device (shapes without memory or
    initialization: paper-size networks in a fraction of a second), and one training
    crop's forward pass through G and D (a generation model: one sample and D on it)."""
    generation = "num_classes" in cfg.model
    with torch.device("meta"):
        # A class folder's classes are counted when it is read: CIFAR-10's 10 here.
        task = hydra.utils.instantiate(cfg.model, _convert_="all",
                                       **({"num_classes": 10} if generation and cfg.model.num_classes is None else {}))
    if generation:
        size, channels = cfg.data.image_size, cfg.data.channels
        batch = {"image": torch.zeros(2, channels, size, size, device="meta"),
                 "label": torch.zeros(2, dtype=torch.long)}  # values: the networks check the classes
        with torch.no_grad():
            task.eval()
            example = task.prepare(batch)
            fake = task.generate(example, task.generator)
            task.discriminate(example, fake, task.discriminator)
        return task, fake
    crop = cfg.data.crop_size
    height, width = (crop, crop) if isinstance(crop, int) else crop
    with torch.no_grad():
        task.eval()
        example = task.prepare(task.batch_from_images(torch.zeros(1, 3, height, width, device="meta")))
        fake = task.generate(example, task.generator)
        task.discriminate(example, fake, task.discriminator)
    return task, fake


@pytest.mark.parametrize("preset", options("experiment"))
def test_every_experiment_preset_composes_passes_the_schema_and_builds_its_networks(preset):
    cfg = composed(f"experiment={preset}", "data.root=/x")
    check_config(cfg)
    task, fake = _build_on_meta(cfg)
    if "crop_size" in cfg.data:
        check_image_sizes(task, types.SimpleNamespace(crop_size=cfg.data.crop_size))
        crop = cfg.data.crop_size
        assert tuple(fake.shape[-2:]) == ((crop, crop) if isinstance(crop, int) else tuple(crop))
        assert sum(p.numel() for p in task.generator.parameters()) > 10_000_000  # the paper's widths
    else:  # generation from noise: CIFAR-10's 32x32 RGB at the papers' widths (Miyato et al. 2018)
        assert tuple(fake.shape[1:]) == (3, 32, 32)
        assert sum(p.numel() for p in task.generator.parameters()) > 3_800_000


@pytest.mark.parametrize("preset", ["landscape_cifar10", "landscape_cifar10_resnet"])
def test_the_kurach_presets_measure_every_penalty_s_gradient_on_compare_gan_s_0_1_images(preset):
    for penalty in options("penalty"):
        task, _ = _build_on_meta(composed(f"experiment={preset}", f"penalty={penalty}", "data.root=/x"))
        assert task.penalty.kind == penalty and task.penalty.image_range == (0.0, 1.0)
        assert task.penalty.gradient_scale == 2.0
    task, _ = _build_on_meta(composed("model=dcgan", "penalty=gp"))
    assert task.penalty.gradient_scale == 1.0  # elsewhere: D's own [-1, 1]


def test_the_paper_pix2pix_brings_256_crops_at_full_size_for_the_bundled_data_only():
    cfg = composed("model=pix2pix")
    assert (cfg.data.crop_size, cfg.data.scale) == (256, 1.0)
    task, _ = _build_on_meta(cfg)
    data = SampleDataModule(**{k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k != "_target_"})
    data.setup("fit")  # the bundled photos at full size hold 256x256 crops
    check_image_sizes(task, data)
    # The demo model keeps its 64 crops at half size; a user's folder and pairs keep theirs.
    assert (composed().data.crop_size, composed().data.scale) == (64, 0.5)
    assert composed("model=pix2pix", "data=folder", "data.root=/x").data == composed("data=folder", "data.root=/x").data
    assert composed("model=pix2pix", "data=paired", "data.root=/x").data == composed("data=paired", "data.root=/x").data
    assert composed("model=pix2pix", "data.crop_size=512").data.crop_size == 512  # the command line wins
    with pytest.raises(ConfigError, match="multiples of 256: use data.crop_size=256"):
        check_image_sizes(task, types.SimpleNamespace(crop_size=64))
