"""Checkpoints written by earlier versions (tests/legacy/, see its README) still work: they
load with their weights and moving average, name no family yet and are recognised by their
hyper-parameters, and a run resumes from them. New checkpoints name their family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganforge.checkpoint import checkpoint_family, load_task, read_checkpoint
from ganforge.tasks import FAMILIES, CompressionTask, Pix2PixTask
from tests.cli.helpers import TINY, run_folders, run_train

LEGACY = Path(__file__).parent / "legacy"
OLD = {"pix2pix": LEGACY / "pix2pix_4e4f7ed.ckpt", "compression": LEGACY / "compression_4e4f7ed.ckpt"}


@pytest.mark.parametrize("family, task_class", [("pix2pix", Pix2PixTask), ("compression", CompressionTask)])
def test_an_old_checkpoint_loads_with_its_weights_and_moving_average(family, task_class):
    saved = read_checkpoint(OLD[family])
    assert "family" not in saved.get("ganforge", {})  # written before the registry
    assert checkpoint_family(saved) == family
    task = load_task(OLD[family])
    assert isinstance(task, task_class)
    state = task.state_dict()
    assert state.keys() == saved["state_dict"].keys()
    for name, value in saved["state_dict"].items():
        assert torch.equal(state[name], value), name
    assert task.generator_ema is not None  # both were trained with model.ema_decay


def test_every_family_is_registered_once_with_how_to_train_it():
    assert {"pix2pix", "compression"} <= set(FAMILIES)
    for name, family in FAMILIES.items():
        assert family.task_class.family == name and family.trained_by.startswith("model=")


def test_a_new_checkpoint_names_its_family(pix2pix_checkpoint, compression_checkpoint):
    assert read_checkpoint(pix2pix_checkpoint)["ganforge"]["family"] == "pix2pix"
    assert read_checkpoint(compression_checkpoint)["ganforge"]["family"] == "compression"


@pytest.mark.slow
def test_a_run_resumes_from_an_old_checkpoint(tmp_path):
    overrides = [o for o in TINY if not o.startswith(("trainer.max_epochs", "data.samples_per_epoch"))]
    result = run_train(*overrides, "data.samples_per_epoch=16", "model.ema_decay=0.9", "trainer.max_epochs=3",
                       f"ckpt_path={OLD['pix2pix']}", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path)
    resumed = read_checkpoint(run / "checkpoints" / "last.ckpt")
    old = read_checkpoint(OLD["pix2pix"])
    assert resumed["epoch"] == 2 and resumed["global_step"] == old["global_step"] + 8
    assert resumed["ganforge"]["family"] == "pix2pix"
