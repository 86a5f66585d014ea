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
    assert task.fused is True
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
    assert calls["cadence"] == 5  # the run's batches 3, 6 and 9 (log_every_n_steps), and each epoch's last


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
    assert logged == [False, False, True]
    assert "train/loss_g" in trainer.callback_metrics
