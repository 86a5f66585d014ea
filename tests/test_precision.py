"""Mixed precision with the manual D/G loop, on a CPU.

Lightning runs 16-mixed only on GPUs, but its MixedPrecision plugin takes a CPU GradScaler:
with autocast switched off ("loss scaling only") every number stays float32 and scaling
by a power of two is exact, so a run must match the float32 run to rounding; with float16
autocast on the CPU the real thing runs, slowly. bf16-mixed runs on a CPU as it is.
"""

from __future__ import annotations

import copy
import math

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torchmetrics.image import StructuralSimilarityIndexMeasure

from ganforge.data import SampleDataModule, rgb_to_lab
from ganforge.losses import gradient_penalty
from ganforge.tasks import CompressionTask, Pix2PixTask
from tests.conftest import TINY_COMPRESSION

TINY = {"generator": {"num_downs": 5, "ngf": 4}, "discriminator": {"ndf": 4, "n_layers": 2}}


class ScalingOnly(MixedPrecision):
    """16-mixed's loss scaling with autocast off: float32 numbers, scaled gradients."""

    def __init__(self, scaler: torch.amp.GradScaler) -> None:
        super().__init__("16-mixed", "cpu", scaler=scaler)

    def autocast_context_manager(self):
        return torch.autocast("cpu", enabled=False)


def data(batches: int = 3, batch_size: int = 4) -> SampleDataModule:
    return SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=batch_size * batches, batch_size=batch_size,
                            max_val_crops_per_image=2)


def fit(task, batches: int = 3, callbacks=(), datamodule=None, **trainer_options) -> L.Trainer:
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=1, num_sanity_val_steps=0, inference_mode=False,
        callbacks=list(callbacks), **trainer_options,
    )
    trainer.fit(task, datamodule=datamodule or data(batches))
    return trainer


def pix2pix(**options) -> Pix2PixTask:
    torch.manual_seed(0)
    return Pix2PixTask(**TINY, **options)


def parameters(task) -> list[torch.Tensor]:
    return [p.detach().clone() for p in [*task.generator.parameters(), *task.discriminator.parameters()]]


def assert_same_parameters(a, b, **tolerance) -> None:
    for x, y in zip(parameters(a), parameters(b)):
        torch.testing.assert_close(x, y, **tolerance)


# ---- 16-mixed: the loss scaling through the manual loop ------------------------------------

@pytest.mark.parametrize("fused", [True, False], ids=["fused_adam", "foreach_adam"])
@pytest.mark.parametrize("case", [
    {"grad_clip": {"value": 0.05, "algorithm": "norm"}},
    {"grad_clip": {"value": 1e-3, "algorithm": "value"}},
    {"gan_loss": {"kind": "wgan_gp"}},
], ids=["clip_norm", "clip_value", "wgan_gp"])
def test_loss_scaling_gives_the_float32_run(case, fused):
    """Two optimizers per batch, clipping and the gradient penalty under a GradScaler give
    the weights of the float32 run: the scale is undone everywhere it must be."""
    options = {**case, "optim": {"fused": fused}}
    plain = pix2pix(**options)
    fit(plain)
    scaled = pix2pix(**options)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    trainer = fit(scaled, plugins=[ScalingOnly(scaler)])
    assert trainer.precision_plugin.scaler is scaler and scaler.get_scale() == 2.0**12  # nothing overflowed
    assert_same_parameters(plain, scaled, rtol=1e-4, atol=1e-6)
    if "grad_clip" in case:  # the clipping was active: without it the weights differ
        unclipped = pix2pix(optim={"fused": fused})
        fit(unclipped)
        with pytest.raises(AssertionError):
            assert_same_parameters(plain, unclipped, rtol=1e-4, atol=1e-6)


class InfGradientOnce(L.Callback):
    """Makes one discriminator gradient infinite in batch `batch`; records D and G around it."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.scales: list[float] = []

    def on_train_batch_start(self, trainer, task, batch, batch_idx) -> None:
        if batch_idx == self.batch:
            self.scales.append(trainer.precision_plugin.scaler.get_scale())
            self.d_before = copy.deepcopy(task.discriminator.state_dict())
            self.g_before = copy.deepcopy(task.generator.state_dict())
            weight = next(task.discriminator.parameters())
            self.hook = weight.register_hook(lambda grad: torch.full_like(grad, math.inf))

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx) -> None:
        if batch_idx == self.batch:
            self.hook.remove()
            self.scales.append(trainer.precision_plugin.scaler.get_scale())
            self.d_after = copy.deepcopy(task.discriminator.state_dict())
            self.g_after = copy.deepcopy(task.generator.state_dict())


@pytest.mark.parametrize("fused", [True, False], ids=["fused_adam", "foreach_adam"])
@pytest.mark.parametrize("clip", [None, 1.0], ids=["no_clip", "clip"])
def test_an_overflowing_gradient_skips_that_step_and_lowers_the_scale(fused, clip):
    task = pix2pix(optim={"fused": fused}, grad_clip={"value": clip})
    assert task.guard.on_nonfinite == "stop"  # an overflow is the scaler's business, not a diverged loss
    spy = InfGradientOnce(batch=1)
    trainer = fit(task, callbacks=[spy], plugins=[ScalingOnly(torch.amp.GradScaler("cpu", init_scale=2.0**10))])
    before, after = spy.scales
    assert after == before * 0.5
    # D's step was skipped (its weights and batch-norm statistics: the statistics moved
    # in the forward pass, so compare the weights), G's was taken.
    d_weights = [k for k in spy.d_before if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(spy.d_before[k], spy.d_after[k]) for k in d_weights)
    assert any(not torch.equal(spy.g_before[k], spy.g_after[k]) for k in spy.g_before)
    assert trainer.global_step == 6  # Lightning counts the skipped step as a step, as for any AMP run
    assert all(torch.isfinite(p).all() for p in task.parameters())


@pytest.mark.parametrize("gan_loss", ["vanilla", "wgan_gp"])
def test_float16_autocast_on_the_cpu_trains(gan_loss):
    """The real 16-mixed: float16 autocast on the CPU and a GradScaler, with clipping, the
    gradient penalty and the stop-on-NaN guard; the scaler starts at 2**16, where the
    penalty's gradients overflow in float16, so this also runs the penalty's back-off."""
    task = pix2pix(gan_loss={"kind": gan_loss}, grad_clip={"value": 1.0})
    before = parameters(task)
    scaler = torch.amp.GradScaler("cpu")
    trainer = fit(task, plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    metrics = trainer.callback_metrics
    assert all(torch.isfinite(metrics[k]) for k in ("train/loss_d", "train/loss_g", "val/psnr", "val/ssim"))
    assert any(not torch.equal(a, b) for a, b in zip(before, parameters(task)))
    assert 1.0 <= scaler.get_scale() <= 2.0**16
    assert all(p.dtype == torch.float32 for p in task.parameters())


# ---- the gradient penalty's scaling --------------------------------------------------------

def linear_critic(factor: float):
    return lambda x: factor * x.flatten(1).sum(1)


def test_the_penalty_scales_the_outputs_and_unscales_the_gradients():
    torch.manual_seed(0)
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    seen = []

    def critic(x):
        out = torch.nn.functional.conv2d(x, torch.full((1, 3, 3, 3), 0.1)).tanh()
        out.register_hook(lambda grad: seen.append(grad.abs().max().item()))
        return out

    torch.manual_seed(1)
    plain = gradient_penalty(critic, real, fake)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**20)
    torch.manual_seed(1)
    scaled = gradient_penalty(critic, real, fake, scaler=scaler)
    assert seen == [1.0, 2.0**20]  # d(sum)/d(output) = 1, then the scale
    torch.testing.assert_close(scaled, plain, rtol=1e-6, atol=0)


def test_an_overflowing_penalty_backs_the_scale_off_instead_of_reporting_a_nan():
    # float32 overflows past 2**128: a critic with gradient 4 at scale 2**127 overflows
    # twice (2**129, 2**128), then 2**125 works.
    real, fake = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    expected = gradient_penalty(linear_critic(4.0), real, fake)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    penalty = gradient_penalty(linear_critic(4.0), real, fake, scaler=scaler)
    assert torch.isfinite(penalty)
    torch.testing.assert_close(penalty, expected)
    assert scaler.get_scale() == 2.0**125


def test_a_penalty_that_is_nan_at_any_scale_is_returned_and_the_scale_kept():
    real, fake = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    nan_outputs = gradient_penalty(lambda x: x.sum((1, 2, 3)) * math.nan, real, fake, scaler=scaler)
    assert torch.isnan(nan_outputs) and scaler.get_scale() == 2.0**8
    # finite outputs, gradients NaN at every scale (sqrt at 0): tried down to 1, then restored
    nan_gradients = gradient_penalty(lambda x: (x * 0).sqrt().flatten(1).sum(1), real, fake, scaler=scaler)
    assert not torch.isfinite(nan_gradients) and scaler.get_scale() == 2.0**8


# ---- bf16-mixed ----------------------------------------------------------------------------

class ValidationOutputs(L.Callback):
    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def on_validation_batch_end(self, trainer, task, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.dtypes |= {outputs["fake"].dtype, outputs["real"].dtype}


@pytest.mark.parametrize("family", ["pix2pix", "compression"])
def test_bf16_mixed_trains_and_scores_in_float32(family):
    if family == "pix2pix":
        task, datamodule = pix2pix(), data()
    else:
        torch.manual_seed(0)
        task = CompressionTask(**TINY_COMPRESSION)
        datamodule = SampleDataModule(crop_size=48, scale=0.25, samples_per_epoch=6, batch_size=2)
    before = parameters(task)
    outputs = ValidationOutputs()
    trainer = fit(task, callbacks=[outputs], datamodule=datamodule, precision="bf16-mixed")
    assert trainer.precision == "bf16-mixed"
    metrics = trainer.callback_metrics
    assert all(torch.isfinite(metrics[k]) for k in ("train/loss_d", "train/loss_g", "val/psnr", "val/ssim", "val/l1"))
    assert any(not torch.equal(a, b) for a, b in zip(before, parameters(task)))
    assert all(p.dtype == torch.float32 for p in task.parameters())  # the weights stay float32
    assert outputs.dtypes == {torch.float32}  # to_rgb's pictures, which the metrics and eval's FID get


def test_colour_conversion_and_ssim_stay_float32_under_autocast():
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 16, 16)
    other = (rgb + 0.1 * torch.randn_like(rgb)).clamp(0, 1)
    from ganforge.tasks.validation import Float32SSIM as _Float32SSIM

    lab, ours = rgb_to_lab(rgb), _Float32SSIM(data_range=1.0)
    ours.update(rgb, other)
    plain = StructuralSimilarityIndexMeasure(data_range=1.0)
    plain.update(rgb, other)
    exact = plain.compute()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(rgb_to_lab(rgb), lab)
        ours_autocast, plain_autocast = _Float32SSIM(data_range=1.0), StructuralSimilarityIndexMeasure(data_range=1.0)
        ours_autocast.update(rgb, other)
        plain_autocast.update(rgb, other)
    assert ours_autocast.compute() == exact
    assert plain_autocast.compute() != exact  # what the float32 SSIM guards against


# ---- the command line ----------------------------------------------------------------------

@pytest.mark.parametrize("accelerator", ["cpu", None])
def test_16_mixed_on_a_cpu_is_one_line_naming_bf16(accelerator, tmp_path, capsys, monkeypatch):
    if accelerator is None and (torch.cuda.is_available() or torch.backends.mps.is_available()):
        pytest.skip("auto picks a GPU here")
    from tests.cli.test_bad_inputs import _run

    args = ["trainer.precision=16-mixed"] + ([f"trainer.accelerator={accelerator}"] if accelerator else [])
    code, out, err = _run("train", args, {"tmp": tmp_path}, capsys, monkeypatch)
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err + out, err[-2000:]
    assert "trainer.precision=16-mixed" in lines[0] and "trainer.precision=bf16-mixed" in lines[0]
    written = [p for p in tmp_path.rglob("config.yaml") if p.parent.name != ".hydra"]  # (Hydra writes its own first)
    assert not written  # refused before the run folder got its config


def test_16_mixed_is_accepted_where_it_can_run():
    from ganforge.cli.errors import check_precision

    check_precision({"precision": "16-mixed", "accelerator": "gpu"})
    check_precision({"precision": "bf16-mixed", "accelerator": "cpu"})
    check_precision({"precision": "32-true", "accelerator": "cpu"})


