"""Data parallel training as a user runs it: `python train.py trainer=ddp_cpu` starts two
processes on the CPU (gloo), each network in its own DistributedDataParallel.

Each run adds tests/ddp_probe.py's callback, which makes every process write its initial
and final state, a fingerprint of each training batch, and whether it wrote sample grids.
"""

from __future__ import annotations

import csv
import signal
from pathlib import Path

import pytest
import torch

from tests.cli.helpers import TINY, run_folders, run_train, stop_part_way

pytestmark = pytest.mark.slow

PROBE = ["+callbacks.probe._target_=tests.ddp_probe.RankProbe", "+callbacks.probe.dirpath=${paths.output_dir}/probe"]
# Four training crops per process and epoch, in batches of two.
DDP = ["trainer=ddp_cpu", "data.batch_size=2"]
TINY_COMPRESSION = [
    "model=compression", "model.bottleneck=4", "model.generator.width=0.05", "model.generator.residual_blocks=1",
    "model.discriminator.scales=2", "model.discriminator.ndf=4", "model.discriminator.n_layers=2",
    "data.crop_size=32", "data.scale=0.25", "data.samples_per_epoch=8", "data.max_val_crops_per_image=2",
    "callbacks.sample_grid.every_n_steps=1", "callbacks.sample_grid.num_images=2", "~callbacks.model_summary",
]


def _probes(run: Path) -> list[dict]:
    records = [torch.load(path, weights_only=False) for path in sorted((run / "probe").glob("rank*.pt"))]
    assert [r["rank"] for r in records] == [0, 1] and {r["world_size"] for r in records} == {2}
    return records


def _assert_in_lockstep(first: dict, second: dict, except_keys: tuple[str, ...] = ()) -> None:
    """Both processes end with the same weights and buffers, and training changed them."""
    different = [k for k in first["final"] if k not in except_keys and not torch.equal(first["final"][k], second["final"][k])]
    assert different == []
    for network in ("generator.", "discriminator."):
        weights = [k for k in first["final"] if k.startswith(network) and ".weight" in k]
        assert weights and any(not torch.equal(first["final"][k], first["initial"][k]) for k in weights), network


def _assert_different_data(first: dict, second: dict, batches: int) -> None:
    assert len(first["batches"]) == len(second["batches"]) == batches
    assert not set(first["batches"]) & set(second["batches"])


def _logged_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def _validate_in_one_process(run: Path) -> dict[str, float]:
    """The run's last checkpoint scored on its validation data by a single process."""
    import hydra
    import lightning as L
    from omegaconf import OmegaConf

    from ganforge.checkpoint import load_task

    config = OmegaConf.load(run / "config.yaml")
    data = hydra.utils.instantiate(config.data, _convert_="all")
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, inference_mode=False)
    return {k: float(v) for k, v in trainer.validate(load_task(run / "checkpoints" / "last.ckpt"), datamodule=data,
                                                     verbose=False)[0].items()}


def test_pix2pix_on_two_processes_trains_one_model_on_twice_the_data(tmp_path):
    # Spectral norm (its power-iteration vectors are buffers), the WGAN-GP penalty (a
    # double backward through D's wrapper) and n_critic=2 (batches without a G step).
    result = run_train(*TINY, *DDP, *PROBE, "norm=spectral", "gan_loss=wgan_gp", "model.n_critic=2",
                       "trainer.max_epochs=2", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path)
    first, second = _probes(run)
    _assert_in_lockstep(first, second)
    assert any(k.endswith("._u") for k in first["final"])  # spectral norm's state, equal above
    _assert_different_data(first, second, batches=2 * 2)  # 8 crops / 2 processes / batch 2, 2 epochs

    # Written once, by the first process: one config, one metrics file, the sample grids.
    assert (run / "config.yaml").is_file() and not list(run.glob("probe/*.yaml"))
    assert first["samples_written"] == 4 and second["samples_written"] == -1
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"step_{s:06d}.png" for s in range(1, 5)]
    validations = [row for row in _logged_rows(run) if row.get("val/psnr")]
    assert len(validations) == 3  # before training and after each epoch, each once
    # the first process alone prints: the run folder (at the start and in the summary), the summary
    assert result.stdout.count("run folder:") == 2 and result.stdout.count("val/psnr:") == 1

    # Each process validated half of the images; the metrics are those of all of them.
    alone = _validate_in_one_process(run)
    for key in ("val/psnr", "val/ssim", "val/l1"):
        assert float(validations[-1][key]) == pytest.approx(alone[key], rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize("separate", [True, False], ids=["a_wrapper_per_network", "find_unused_parameters"])
def test_compression_on_two_processes_keeps_one_average_and_counts_every_symbol(separate, tmp_path):
    result = run_train(*TINY_COMPRESSION, *DDP, *PROBE, "trainer.max_epochs=2",
                       f"trainer.strategy.separate_networks={str(separate).lower()}", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path)
    first, second = _probes(run)
    assert first["wrapped"] == ("networks" if separate else "task")
    # Each process counts the symbols of its own crops; all else is the same.
    _assert_in_lockstep(first, second, except_keys=("symbol_counts",))
    assert any(k.startswith("generator_ema.") for k in first["final"])
    assert first["final"]["ema_updates"] == 2 * 2
    _assert_different_data(first, second, batches=2 * 2)
    # The entropy coder's model in the checkpoint holds the symbols of both processes.
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]["symbol_counts"]
    assert torch.equal(saved, first["final"]["symbol_counts"] + second["final"]["symbol_counts"])
    assert int(saved.sum()) == 2 * int(first["final"]["symbol_counts"].sum()) > 0


def test_a_multirun_of_data_parallel_runs_trains_each_run_on_both_processes(tmp_path):
    result = run_train("-m", *TINY, *DDP, *PROBE, "norm=batch,spectral", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = run_folders(tmp_path)
    assert len(runs) == 2  # the extra processes trained their run, they did not start the sweep again
    assert len({run.parent for run in runs}) == 1
    for run, norm in zip(runs, ("batch", "spectral")):
        first, second = _probes(run)
        buffers = ("running_mean", "_u")
        assert any(k.endswith(buffers[norm == "spectral"]) for k in second["final"]), norm
        assert not any(k.endswith(buffers[norm == "batch"]) for k in second["final"]), norm
        # Batch norm's running statistics are each process's own (no SyncBatchNorm on the
        # CPU); the wrapper broadcasts rank 0's before each forward, so only the last
        # forward's update may differ.
        skip = tuple(k for k in first["final"] if k.endswith(("running_mean", "running_var")))
        _assert_in_lockstep(first, second, except_keys=skip)
        _assert_different_data(first, second, batches=2)


def test_sigterm_stops_every_process_together_and_the_run_resumes_to_the_same_weights(tmp_path):
    """SIGTERM to the first process (a cluster's time limit): every process stops after the
    same batch and saves; resumed, the run ends with the weights of an uninterrupted one."""
    longer = [*TINY, *DDP, "trainer.max_epochs=3", "data.samples_per_epoch=32", "validate_before_training=false",
              "callbacks.last_checkpoint.every_n_batches=3", "callbacks.sample_grid.every_n_steps=0"]
    uninterrupted = run_train(*longer, log_dir=tmp_path / "whole")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    stopped_dir = tmp_path / "stopped"
    stopped, run = stop_part_way(*longer, log_dir=stopped_dir, how=signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    # said once, by the first process
    assert stopped.stderr.count("stopped by SIGTERM") == 1 and f"ckpt_path={run}" in stopped.stderr

    def checkpoint(folder: Path) -> dict:
        [found] = run_folders(folder)
        return torch.load(found / "checkpoints" / "last.ckpt", weights_only=True)

    whole = checkpoint(tmp_path / "whole")
    assert 0 < checkpoint(stopped_dir)["global_step"] < whole["global_step"], "not stopped part-way"
    resumed = run_train(f"ckpt_path={run}", log_dir=tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = checkpoint(tmp_path / "resumed")
    assert final["global_step"] == whole["global_step"]
    # Exact: the same operations on the same data in the same order (see test_resume.py).
    for name, value in whole["state_dict"].items():
        assert torch.equal(value, final["state_dict"][name]), name
