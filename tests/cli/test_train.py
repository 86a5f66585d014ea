"""End-to-end runs of train.py, as a user runs it."""

import csv
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.cli.helpers import TINY, TINY_MODEL, run_folders, run_train


def read_metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def column(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key)]


@pytest.mark.slow
def test_a_run_folder_holds_config_checkpoints_metrics_samples_and_wandb(tmp_path):
    result = run_train(*TINY, "trainer.max_epochs=2", log_dir=tmp_path, logger="default")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path)
    config = OmegaConf.load(run / "config.yaml")
    assert config.norm.kind == "instance" and config.paths.output_dir == str(run)  # resolved, not ${...}
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
    rows = read_metrics(run)
    psnr = column(rows, "val/psnr")
    assert len(psnr) == 3  # the untrained model, then after each of 2 epochs
    assert all(math.isfinite(v) for v in column(rows, "train/loss_d") + column(rows, "train/loss_g"))
    assert sorted(p.name for p in (run / "samples").glob("*.png"))[:2] == ["step_000001.png", "step_000002.png"]
    offline = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 0
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["hyper_parameters"]["norm"]["kind"] == "instance"
    assert last["epoch"] == 1  # the second, final epoch
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    [state] = [v for k, v in best["callbacks"].items() if "val/psnr" in k]
    assert float(state["best_model_score"]) == pytest.approx(max(psnr[1:]), rel=1e-6)
    assert "val/psnr: " in result.stdout and "(untrained) -> " in result.stdout


@pytest.mark.slow
def test_every_norm_and_activation_pair_trains_in_one_multirun(tmp_path):
    norms, acts = ["batch", "instance", "pixel", "spectral", "none"], ["relu", "lrelu", "elu", "selu", "gelu"]
    result = run_train(
        "-m", f"norm={','.join(norms)}", f"act={','.join(acts)}", *TINY, "~callbacks.sample_grid",
        "~callbacks.model_checkpoint", "~callbacks.last_checkpoint", "trainer.enable_checkpointing=false",
        "validate_before_training=false",
        log_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = run_folders(tmp_path)
    assert len(runs) == 25
    seen = set()
    for run in runs:
        config = OmegaConf.load(run / "config.yaml")
        seen.add((config.norm.kind, config.act.kind))
        rows = read_metrics(run)
        losses = column(rows, "train/loss_d") + column(rows, "train/loss_g") + column(rows, "val/psnr")
        assert losses and all(math.isfinite(v) for v in losses), run
    assert seen == {(n, a) for n in norms for a in acts}


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["lsgan", "hinge", "wgan_gp"])
def test_each_gan_loss_trains_from_the_command_line(tmp_path, loss):
    result = run_train(*TINY, f"gan_loss={loss}", "model.discriminator.norm=spectral", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path)
    config = OmegaConf.load(run / "config.yaml")
    # wgan_gp is the preset gan_loss=wgan penalty=gp
    assert (config.gan_loss.kind, config.penalty.kind) == (("wgan", "gp") if loss == "wgan_gp" else (loss, "none"))
    assert all(math.isfinite(v) for v in column(read_metrics(run), "train/loss_d"))


@pytest.mark.slow
def test_paired_folder_trains_with_tensorboard(tmp_path, paired_folder):
    result = run_train(*TINY_MODEL, "data=paired", f"data.root={paired_folder}", "data.crop_size=32",
                       "data.load_size=36", "data.batch_size=2", "data.num_workers=0", "data.direction=BtoA",
                       log_dir=tmp_path / "logs", logger="tensorboard")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path / "logs")
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert column(read_metrics(run), "val/psnr")


COMPRESSION_TINY = [
    "model=compression",
    "model.bottleneck=4",
    "model.generator.width=0.05",
    "model.generator.residual_blocks=1",
    "model.discriminator.scales=2",
    "model.discriminator.ndf=4",
    "model.discriminator.n_layers=2",
    "data.crop_size=48",
    "data.scale=0.25",
    "data.samples_per_epoch=4",
    "data.batch_size=2",
    "trainer.max_epochs=1",
    "~callbacks.model_summary",
]


@pytest.mark.slow
def test_compression_trains_with_each_quantizer_preset(tmp_path):
    result = run_train("-m", "quantizer=l3,l5,l7", *COMPRESSION_TINY, "~callbacks.sample_grid", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = run_folders(tmp_path)
    bounds = {}
    for run in runs:
        config = OmegaConf.load(run / "config.yaml")
        assert config.model.gan_loss.kind == "lsgan" and config.norm.kind == "instance"  # the paper's parts
        bound = column(read_metrics(run), "val/bpp_bound")[-1]
        bounds[len(config.quantizer.centers)] = bound
    for levels, bound in bounds.items():
        assert bound == pytest.approx(4 * math.log2(levels) / 256, rel=1e-5)
    assert sorted(bounds) == [3, 5, 7]


@pytest.mark.slow
def test_compression_custom_centers_temperature_learnable_and_noise(tmp_path):
    result = run_train(*COMPRESSION_TINY, "quantizer.centers=[-1.5,0,1.5]", "quantizer.temperature=0.5",
                       "quantizer.learnable=true", "model.generator.sample_noise=true",
                       "model.discriminator.conditional=true", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path)
    assert column(read_metrics(run), "val/bpp_bound")[-1] == pytest.approx(4 * math.log2(3) / 256, rel=1e-5)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    centers = checkpoint["state_dict"]["generator.quantizer._centers"]
    assert not torch.allclose(centers, torch.tensor([-1.5, 0.0, 1.5]))
    assert torch.all(centers[1:] > centers[:-1])
    assert "bits per pixel: bound" in result.stdout


@pytest.mark.slow
def test_compression_trains_on_a_folder_of_images(tmp_path, image_folder):
    overrides = [o for o in COMPRESSION_TINY if not o.startswith(("data.scale", "data.samples_per_epoch"))]
    result = run_train(*overrides, "data=folder", f"data.root={image_folder}", "data.num_workers=0",
                       "data.samples_per_epoch=4", log_dir=tmp_path / "logs")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path / "logs")
    assert OmegaConf.load(run / "config.yaml").data.val_full_images is True
    assert len(column(read_metrics(run), "val/psnr")) == 2


@pytest.mark.slow
def test_a_run_resumes_from_its_last_checkpoint_into_a_new_folder(tmp_path):
    first = run_train(*TINY, "model.ema_decay=0.9", log_dir=tmp_path / "first")
    assert first.returncode == 0, first.stderr[-3000:]
    [run] = run_folders(tmp_path / "first")
    second = run_train(*TINY, "model.ema_decay=0.9", "trainer.max_epochs=2",
                       f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", log_dir=tmp_path / "second")
    assert second.returncode == 0, second.stderr[-3000:]
    [resumed] = run_folders(tmp_path / "second")
    rows = read_metrics(resumed)
    assert {r["epoch"] for r in rows if r.get("val/psnr")} == {"1"}  # only the second epoch ran
    last = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 1 and int(last["state_dict"]["ema_updates"]) == 4  # 2 generator steps per epoch
    assert (run / "metrics.csv").is_file()  # the first run's files are untouched
