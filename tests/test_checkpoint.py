"""Checkpoints: atomic writes, loading that cannot run code, and the guard against NaN."""

from __future__ import annotations

import pickle

import lightning as L
import pytest
import torch

import ganforge.checkpoint as checkpoint_module
from ganforge.checkpoint import AtomicCheckpointIO, LastCheckpoint, load_task, read_checkpoint
from ganforge.errors import NonFiniteLossError, UserError
from ganforge.tasks import Pix2PixTask
from tests.tasks.test_gan import TINY_D, TINY_G, tiny_data


def test_a_failed_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "step": 1}, path)

    def dies_half_way(obj, file):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # what a kill looks like from inside Python

    monkeypatch.setattr(checkpoint_module.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "step": 2}, path)
    assert io.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


class _Payload:
    """Unpickling this would create a file: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"lambda_l1": 1.0}, "x": _Payload(marker)}, path,
               pickle_module=pickle)
    for load in (read_checkpoint, load_task, lambda p: AtomicCheckpointIO().load_checkpoint(p)):
        with pytest.raises(UserError, match="cannot read checkpoint"):
            load(path)
    assert not marker.exists()


def _trainer(tmp_path, batches_before_nan, **task_options):
    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D, **task_options)
    original = task.gan_loss.discriminator
    calls = {"n": 0}

    def discriminator_loss(real, fake):
        calls["n"] += 1
        loss = original(real, fake)
        return loss * float("nan") if calls["n"] in batches_before_nan else loss

    task.gan_loss.discriminator = discriminator_loss
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False,
                        default_root_dir=tmp_path, enable_checkpointing=False,
                        enable_model_summary=False, limit_val_batches=0, inference_mode=False,
                        plugins=[AtomicCheckpointIO()],
                        callbacks=[LastCheckpoint(tmp_path, every_n_batches=1)])
    return task, trainer


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    task, trainer = _trainer(tmp_path, batches_before_nan={3})
    with pytest.raises(NonFiniteLossError, match=r"train/loss_d became NaN at step 4 \(epoch 0, batch 2\)"):
        trainer.fit(task, datamodule=tiny_data(batches=4))
    kept = read_checkpoint(tmp_path / "last.ckpt")
    assert kept["global_step"] == 4  # two batches of one D and one G step
    assert all(torch.isfinite(v).all() for v in kept["state_dict"].values() if v.is_floating_point())


def test_on_nonfinite_skip_skips_those_steps_and_counts_them(tmp_path):
    task, trainer = _trainer(tmp_path, batches_before_nan={1, 3})
    task.guard.on_nonfinite = "skip"
    trainer.fit(task, datamodule=tiny_data(batches=4))
    assert task.guard.skips == 2
    assert trainer.global_step == 4  # the two good batches stepped D and G
    assert trainer.callback_metrics["train/nonfinite_skips"] == 2
    assert all(torch.isfinite(p).all() for p in task.parameters())
    assert read_checkpoint(tmp_path / "last.ckpt")["ganforge"]["nonfinite_skips"] == 2
