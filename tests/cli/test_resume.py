"""Reliability of a training run as a user sees it: a killed run resumes exactly, SIGTERM
saves before exiting, the same seed gives the same losses, ckpt_path finds runs."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.cli.helpers import TINY, run_folders, run_train, stop_part_way

# Three epochs of 16 tiny batches, last.ckpt every 5 batches: long enough to be stopped
# part-way, short enough for CI.
LONGER = [o for o in TINY if not o.startswith(("trainer.max_epochs", "data.samples_per_epoch"))] + [
    "trainer.max_epochs=3",
    "data.samples_per_epoch=64",
    "callbacks.last_checkpoint.every_n_batches=5",
    "callbacks.sample_grid.every_n_steps=0",
    "validate_before_training=false",
    # dropout and a moving average of G: state a resume must restore, randomness it must repeat
    "model.generator.num_downs=6",
    "model.generator.dropout=0.5",
    "data.crop_size=64",
    "model.ema_decay=0.9",
    "model.lr_decay.start_epoch=1",
    "model.lr_decay.epochs=2",
]


def _assert_stopped_cleanly(stopped: subprocess.CompletedProcess, run: Path, how: signal.Signals) -> None:
    """Exit 128 + signal, a line naming the signal and how to continue, no traceback."""
    assert stopped.returncode == 128 + how, stopped.stderr[-3000:]
    assert f"stopped by {how.name}" in stopped.stderr and f"ckpt_path={run}" in stopped.stderr
    assert "Traceback" not in stopped.stderr


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("uninterrupted")
    result = run_train(*LONGER, log_dir=log_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(log_dir)
    return run


def _assert_resume_matches(stopped_run: Path, uninterrupted: Path, log_dir: Path) -> None:
    stopped_at = torch.load(stopped_run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    final = torch.load(uninterrupted / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0 < stopped_at < final, "the run was not stopped part-way"
    # Only ckpt_path: the run's own overrides (LONGER) are applied from its .hydra folder.
    resumed = run_train(f"ckpt_path={stopped_run}", log_dir=log_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    [run] = run_folders(log_dir)
    expected, actual = _weights(uninterrupted), _weights(run)
    assert expected.keys() == actual.keys()
    # Exact equality: the same machine runs the same operations in the same order on the
    # same data with the same random numbers, so every bit matches. Any tolerance would
    # hide a skipped or repeated batch, a missed RNG draw or a lost optimizer state,
    # which move the weights by far more than rounding.
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs after the resume"


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(uninterrupted, tmp_path):
    stopped, run = stop_part_way(*LONGER, log_dir=tmp_path / "killed", how=signal.SIGKILL)
    assert stopped.returncode == -signal.SIGKILL
    _assert_resume_matches(run, uninterrupted, tmp_path / "resumed")


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_run_resumes_to_the_same_weights(uninterrupted, tmp_path):
    stopped, run = stop_part_way(*LONGER, log_dir=tmp_path / "terminated", how=signal.SIGTERM)
    _assert_stopped_cleanly(stopped, run, signal.SIGTERM)
    _assert_resume_matches(run, uninterrupted, tmp_path / "resumed")


def _losses(run: Path) -> list[tuple[str, str]]:
    with open(run / "metrics.csv") as file:
        return [(row["train/loss_d"], row["train/loss_g"]) for row in csv.DictReader(file) if row.get("train/loss_d")]


@pytest.mark.slow
def test_the_same_seed_gives_identical_losses_and_another_seed_does_not(tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        result = run_train(*TINY, "trainer.log_every_n_steps=1", "model.generator.num_downs=6",
                           "data.crop_size=64", f"seed={seed}", log_dir=tmp_path / name)
        assert result.returncode == 0, result.stderr[-3000:]
        [runs[name]] = run_folders(tmp_path / name)
    first = _losses(runs["a"])
    assert len(first) >= 2
    assert first == _losses(runs["b"])  # as logged, to the last digit
    assert first != _losses(runs["c"])


@pytest.mark.slow
def test_ckpt_path_last_resumes_the_newest_run_and_a_folder_means_its_last_checkpoint(tmp_path):
    first = run_train(*TINY, log_dir=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    [run] = run_folders(tmp_path)
    time.sleep(1.1)  # a new run folder (named by the second)
    again = run_train("ckpt_path=last", "trainer.max_epochs=2", log_dir=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = [r for r in run_folders(tmp_path) if r != run]
    assert len(resumed) == 1
    assert torch.load(resumed[0] / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    # The first run's overrides came along: the tiny generator, not the default one.
    assert _weights(resumed[0]).keys() == _weights(run).keys()


@pytest.mark.slow
def test_a_diverged_run_in_a_sweep_is_left_out_and_the_sweep_goes_on(tmp_path):
    result = run_train("-m", "model.optim.lr_d=1e30,2e-4", *TINY,
                       "validate_before_training=false", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("became NaN") >= 1 and "the sweep goes on" in result.stderr
    finished = [r for r in run_folders(tmp_path) if (r / "checkpoints" / "last.ckpt").is_file()]
    assert finished, "no run of the sweep finished"


@pytest.mark.slow
def test_ctrl_c_saves_between_batches_and_says_how_to_continue(uninterrupted, tmp_path):
    stopped, run = stop_part_way(*LONGER, log_dir=tmp_path / "interrupted", how=signal.SIGINT)
    _assert_stopped_cleanly(stopped, run, signal.SIGINT)
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    final = torch.load(uninterrupted / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    # Saved after a whole batch: one D and one G step each, so an even step count.
    assert 0 < saved["global_step"] < final and saved["global_step"] % 2 == 0
