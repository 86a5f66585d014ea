"""model.optim.fused, model.channels_last, model.compile and the train-loss logging cadence:
each changes how fast a step runs, never what it computes (beyond rounding)."""

from __future__ import annotations

import hydra
import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.loggers import CSVLogger

from ganforge.checkpoint import load_task
from ganforge.cli import CONFIG_DIR
from ganforge.data import SampleDataModule
from ganforge.errors import ConfigError
from ganforge.tasks import CompressionTask, Pix2PixTask
from tests.conftest import TINY_COMPRESSION

TINY = {"generator": {"num_downs": 5, "ngf": 4}, "discriminator": {"ndf": 4, "n_layers": 2}}


def data(batches: int = 3) -> SampleDataModule:
    return SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=4 * batches, batch_size=4,
                            max_val_crops_per_image=2)


def fit(task, batches: int = 3, callbacks=(), epochs: int = 1, **trainer_options) -> L.Trainer:
    L.seed_everything(0, verbose=False)
    options = {"logger": False, "limit_val_batches": 1, **trainer_options}
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, inference_mode=False,
                        callbacks=list(callbacks), **options)
    trainer.fit(task, datamodule=data(batches))
    return trainer


def pix2pix(**options) -> Pix2PixTask:
    torch.manual_seed(0)
    return Pix2PixTask(**TINY, **options)


def weights(task) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in task.state_dict().items()}


# ---- fused Adam ----------------------------------------------------------------------------

def test_adam_is_fused_by_default_where_torch_can_and_falls_back_where_it_cannot():
    task = pix2pix()
    assert task.optim.fused is True
    assert task.adam(task.generator.parameters(), 1e-3).defaults["fused"] is True  # CPU: torch >= 2.4
    assert not pix2pix(optim={"fused": False}).adam(task.generator.parameters(), 1e-3).defaults["fused"]
    # parameters torch has no fused kernel for (here: on the meta device): the default Adam
    meta = [torch.nn.Parameter(torch.empty(3, device="meta"))]
    assert not task.adam(meta, 1e-3).defaults["fused"]
    with pytest.raises(ConfigError, match="model.optim.fused must be true or false"):
        pix2pix(optim={"fused": "yes"})


def test_fused_adam_makes_the_updates_of_the_default_adam():
    """The update alone: the same gradients, five steps, on the paper-sized networks' shapes."""
    task = pix2pix()
    params = {fused: [p.detach().clone().requires_grad_(True) for p in task.generator.parameters()]
              for fused in (True, False)}
    optimizers = {fused: pix2pix(optim={"fused": fused}).adam(params[fused], 2e-4) for fused in (True, False)}
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        for p_fused, p_plain in zip(params[True], params[False]):
            grad = torch.randn(p_fused.shape, generator=generator)
            p_fused.grad, p_plain.grad = grad.clone(), grad.clone()
        for optimizer in optimizers.values():
            optimizer.step()
    for a, b in zip(params[True], params[False]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("family", ["pix2pix", "compression"])
def test_fused_adam_trains_to_the_weights_of_the_default_adam(family):
    """Whole training steps from the same start. Compression's convolutions before instance
    norm have biases whose true gradient is 0 (the norm subtracts them again): Adam turns
    their rounding noise into steps of +-lr, so those move apart by up to 2 lr per step
    once D's first update (fused or not) differs in the last bit; every other weight agrees."""
    def make(fused: bool):
        torch.manual_seed(0)
        if family == "pix2pix":
            return Pix2PixTask(**TINY, optim={"fused": fused}, lr_decay={"start_epoch": 0, "epochs": 2})
        return CompressionTask(**TINY_COMPRESSION, optim={"fused": fused})

    tasks = {}
    for fused in (True, False):
        task = make(fused)
        if family == "pix2pix":
            trainer = fit(task, epochs=2)
        else:
            L.seed_everything(0, verbose=False)
            trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                                inference_mode=False)
            trainer.fit(task, datamodule=SampleDataModule(crop_size=48, scale=0.25, samples_per_epoch=2, batch_size=2))
        assert [bool(o.defaults["fused"]) for o in trainer.optimizers] == [fused, fused]
        tasks[fused] = task
    fused, plain = weights(tasks[True]), weights(tasks[False])
    assert fused.keys() == plain.keys()
    dead = biases_before_instance_norm(tasks[True])
    assert bool(dead) == (family == "compression")
    for key in fused:
        if key in dead:
            assert (fused[key] - plain[key]).abs().max() <= 2 * 2e-4 * 1.01, key  # one G step, lr 2e-4
        else:
            torch.testing.assert_close(fused[key], plain[key], rtol=1e-4, atol=1e-6, msg=key)
    assert any(not torch.equal(a, b) for a, b in zip(fused.values(), weights(make(True)).values()))  # they trained


def biases_before_instance_norm(task) -> set[str]:
    """State-dict names of (transposed) convolution biases that an affine-free instance norm follows."""
    found = set()
    for name, module in task.named_modules():
        children = list(module.named_children())
        for (conv_name, conv), (_, norm) in zip(children, children[1:]):
            if (isinstance(conv, torch.nn.modules.conv._ConvNd) and conv.bias is not None
                    and isinstance(norm, torch.nn.InstanceNorm2d) and not norm.affine):
                found.add(f"{name}.{conv_name}.bias" if name else f"{conv_name}.bias")
    return found


# ---- channels-last -------------------------------------------------------------------------

def test_channels_last_networks_compute_what_the_default_format_computes():
    default, last = pix2pix(), pix2pix(channels_last=True)
    last.configure_model()  # what the Trainer calls
    conv = next(p for p in last.generator.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x = torch.randn(2, 1, 32, 32)
    for mode in ("train", "eval"):
        for task in (default, last):
            getattr(task, mode)()
        torch.manual_seed(1)
        expected = default.generator(x)
        torch.manual_seed(1)
        actual = last.generator(x.contiguous(memory_format=torch.channels_last))
        assert actual.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
        pair = torch.cat([x, expected], 1)
        torch.testing.assert_close(last.discriminator(pair.contiguous(memory_format=torch.channels_last)),
                                   default.discriminator(pair), rtol=1e-4, atol=1e-5)


class BatchFormats(L.Callback):
    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx) -> None:
        self.seen.append(batch["image"].is_contiguous(memory_format=torch.channels_last))


def test_channels_last_training_runs_and_keeps_the_format():
    task = pix2pix(channels_last=True, ema_decay=0.9)
    before = weights(pix2pix())
    formats = BatchFormats()
    trainer = fit(task, callbacks=[formats])
    assert formats.seen == [True, True, True]
    assert all(torch.isfinite(trainer.callback_metrics[k]) for k in ("train/loss_d", "train/loss_g", "val/psnr"))
    after = weights(task)
    assert any(not torch.equal(after[k], before[k]) for k in before)
    for network in (task.generator, task.discriminator, task.generator_ema):
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in network.parameters() if p.dim() == 4)


# ---- torch.compile -------------------------------------------------------------------------

def test_compile_trains_compiled_networks_and_the_checkpoint_works_everywhere(tmp_path):
    """model.compile with a cheap backend (aot_eager: Dynamo and AOT autograd, no code
    generation); inductor, the default, is what a user gets."""
    from ganforge.cli.export import export

    task = pix2pix(compile=True, compile_backend="aot_eager", ema_decay=0.9)
    trainer = fit(task)
    assert task.speed.compiled
    for network in (task.generator, task.discriminator, task.generator_ema):
        assert network._compiled_call_impl is not None
    assert all(torch.isfinite(trainer.callback_metrics[k]) for k in ("train/loss_d", "train/loss_g", "val/psnr"))
    # The moving average is its own compiled network, not a second name for the generator.
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        task.eval()
        assert not torch.allclose(task.generator(x), task.generator_ema(x))
        compiled_output = task.generator_ema(x)
    # Same state-dict keys as an uncompiled task: checkpoints, resume, eval, predict, export.
    uncompiled = pix2pix(ema_decay=0.9)
    uncompiled.setup("fit")
    assert list(task.state_dict()) == list(uncompiled.state_dict())
    path = tmp_path / "compiled.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_task(path)
    assert loaded.speed.compile and not loaded.speed.compiled  # hyper-parameter kept, nothing compiled outside fit
    with torch.no_grad():
        torch.testing.assert_close(loaded.inference_generator(x), compiled_output, rtol=1e-4, atol=1e-5)
    assert loaded.translate(torch.rand(1, 3, 40, 48)).shape == (1, 3, 40, 48)
    line = export(path, tmp_path / "generator.pt", "torchscript")
    assert "checked against PyTorch" in line


def test_compile_leaves_a_gradient_penalty_discriminator_uncompiled():
    task = pix2pix(compile=True, compile_backend="eager", gan_loss={"kind": "wgan_gp"})
    trainer = fit(task, batches=2)
    assert task.generator._compiled_call_impl is not None and task.discriminator._compiled_call_impl is None
    assert torch.isfinite(trainer.callback_metrics["train/loss_d_gp"])


def test_compile_is_not_done_by_validate_alone_and_rejects_unknown_backends():
    task = pix2pix(compile=True, compile_backend="eager")
    L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
              limit_val_batches=1, inference_mode=False).validate(task, datamodule=data(1), verbose=False)
    assert not task.speed.compiled and task.generator._compiled_call_impl is None
    with pytest.raises(ConfigError, match="model.compile_backend=no_such_backend is not a torch.compile backend"):
        pix2pix(compile=True, compile_backend="no_such_backend")
    with pytest.raises(ConfigError, match="model.compile must be true or false"):
        pix2pix(compile="sometimes")


# ---- logging cadence -----------------------------------------------------------------------

class EveryStep(Pix2PixTask):
    """The task as it logged before: every batch."""

    def _logs_reach_anyone(self, batch_idx: int) -> bool:
        return True


def test_logging_every_n_steps_writes_the_same_metrics_csv_as_logging_every_step(tmp_path):
    """Lightning hands step metrics to the loggers only every log_every_n_steps batches:
    logging on the other batches changed nothing but the time."""
    calls = {}
    texts = {}
    for name, cls in (("cadence", Pix2PixTask), ("every", EveryStep)):
        torch.manual_seed(0)
        task = cls(**TINY, n_critic=2)
        calls[name] = 0
        original = task.log_dict

        def counting(*args, _original=original, _name=name, _task=task, **kwargs):
            calls[_name] += _task.trainer.training  # not validation's
            return _original(*args, **kwargs)

        task.log_dict = counting
        logger = CSVLogger(tmp_path / name, name="", version="")
        fit(task, batches=5, epochs=2, logger=logger, log_every_n_steps=3)
        texts[name] = (tmp_path / name / "metrics.csv").read_text()
    assert texts["cadence"] == texts["every"]
    assert "train/loss_g" in texts["cadence"] and "train/loss_d" in texts["cadence"]
    assert calls["every"] == 10
    assert calls["cadence"] == 6  # the run's batches 3, 6 and 9 (log_every_n_steps), each epoch's first and last


def test_the_last_batch_of_a_run_is_logged_when_max_steps_ends_it_mid_epoch():
    logged = []

    class Spy(Pix2PixTask):
        def _logs_reach_anyone(self, batch_idx: int) -> bool:
            result = super()._logs_reach_anyone(batch_idx)
            logged.append(result)
            return result

    torch.manual_seed(0)
    task = Spy(**TINY)
    trainer = fit(task, batches=5, max_steps=6)  # 3 batches of 5: one D and one G step each
    assert logged == [True, False, True]  # the epoch's first batch, then the run's last
    assert "train/loss_g" in trainer.callback_metrics


# ---- the config ----------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["pix2pix", "pix2pix_small", "compression"])
def test_the_options_are_in_the_model_configs(model):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["paths.output_dir=/tmp/unused", f"model={model}"])
        assert (cfg.model.optim.fused, cfg.model.channels_last, cfg.model.compile, cfg.model.compile_backend) == (
            True, False, False, "inductor")
        cfg = compose(config_name="train", overrides=[
            "paths.output_dir=/tmp/unused", f"model={model}", "model.optim.fused=false", "model.channels_last=true",
            "model.compile=true", "model.compile_backend=eager"])
    task = hydra.utils.instantiate(cfg.model, _convert_="all")
    assert (task.optim.fused, task.speed.channels_last, task.speed.compile, task.speed.backend) == (False, True, True, "eager")
    assert task.hparams["compile"] is True  # kept with the checkpoint, for load_task

