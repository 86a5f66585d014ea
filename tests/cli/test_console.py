"""What a run prints: the run folder, the networks with real numbers, the progress bar and
the summary at the end, and none of the lines Lightning and W&B print by default."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from ganforge.console import forward_costs, one_sample
from ganforge.data import SampleDataModule
from ganforge.tasks import CompressionTask, Pix2PixTask
from tests.cli.helpers import TINY, run_folders, run_train

# Each line that a default run printed before ganforge silenced it (issue 15), by its source.
NOISY = {
    "Lightning's litlogger advertisement": "litlogger",
    "Lightning's other advertisements": "💡 Tip",
    "CSVLogger's warning about its (new) folder": "exists and is not empty",
    "... and that files will be deleted": "Previous log files",
    "Lightning's note on our summary callback": "already configured with model summary callbacks",
    "Lightning's summary, FLOPs 0": "Total FLOPs",
    "Lightning's summary of every submodule": "val_metrics",
    "Lightning's device lines": "GPU available",
    "... TPU too": "TPU available",
    "Lightning's confirmation of the explicit limits": "was configured so",
    "W&B's banner and end-of-run history": "wandb:",
    "the W&B run id in the progress bar": "v_num",
}

WITH_SUMMARY = [o for o in TINY if o != "~callbacks.model_summary"] + ["trainer.log_every_n_steps=1"]


def test_a_default_run_prints_what_a_user_needs_and_none_of_the_noise(tmp_path):
    """The real train.py with the default loggers (W&B offline + CSV) and W&B's own output
    settings (the tests' WANDB_SILENT removed)."""
    result = run_train(*WITH_SUMMARY, log_dir=tmp_path, logger="default", unset=("WANDB_SILENT",))
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    for what, text in NOISY.items():
        assert text not in console, f"{what}: {console[-4000:]}"
    [run] = run_folders(tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0] == f"run folder: {run}" and lines[-1] == f"run folder: {run}"
    # The network table with real numbers, before the first step.
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]] for line in lines
            if line.startswith("│")}
    assert set(rows) == {"generator", "discriminator"}
    assert rows["generator"][:3] == ["UNetGenerator", "65.5 K", "1x1x32x32"] and rows["generator"][3] != "0"
    assert rows["discriminator"][2] == "1x3x32x32"
    assert next(i for i, line in enumerate(lines) if line.startswith("│")) < next(
        i for i, line in enumerate(lines) if line.startswith("Epoch 0"))
    assert "trained parameters: 68.5 K" in result.stdout
    # The summary at the end, and the one W&B line a user needs.
    assert re.search(r"^val/psnr: [\d.]+ \(untrained\) -> [\d.]+$", result.stdout, re.M)
    [offline] = list(run.glob("wandb/offline-run-*"))
    assert f"W&B offline run: upload it with `wandb sync {offline}`" in result.stdout
    # What the console leaves out is still in train.log.
    assert "GPU available" in (run / "train.log").read_text()
    assert (run / "metrics.csv").is_file()


@pytest.mark.parametrize("switch", ["debug=fdr", "trainer.fast_dev_run=true"])
def test_a_fast_dev_run_smoke_tests_the_config_and_leaves_no_checkpoints_or_logs(tmp_path, switch):
    result = run_train(*TINY, switch, log_dir=tmp_path, logger="default")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Running in `fast_dev_run` mode: will run the requested loop using 1 batch(es)" in result.stderr
    assert "`Trainer.fit` stopped: `max_steps=1` reached." in result.stderr
    [run] = run_folders(tmp_path)
    assert re.search(r"^val/psnr: [\d.]+ \(untrained\) -> [\d.]+$", result.stdout, re.M)
    # Lightning suppresses logging and ModelCheckpoint; LastCheckpoint and W&B follow it.
    assert not (run / "checkpoints").exists() and not (run / "metrics.csv").exists() and not (run / "wandb").exists()


def _convolution_flops(network: nn.Module, x: torch.Tensor) -> int:
    """2 x the multiply-adds of every convolution for input `x`, from the layer shapes: a
    Conv2d computes (C_in / groups) * k_h * k_w of them per output value, a ConvTranspose2d
    (C_out / groups) * k_h * k_w per input value."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):
            total += 2 * inputs[0].numel() * module.out_channels // module.groups * k
        else:
            total += 2 * output.numel() * module.in_channels // module.groups * k

    hooks = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        network.eval()(x)
    for hook in hooks:
        hook.remove()
    return total


@pytest.mark.parametrize("family", ["pix2pix", "compression"])
def test_the_summary_counts_the_convolutions_of_one_forward_pass(family):
    if family == "pix2pix":
        data = SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=4, batch_size=2)
        task = Pix2PixTask(generator={"num_downs": 5, "ngf": 4}, discriminator={"ndf": 4, "n_layers": 2}, norm="instance")
    else:
        data = SampleDataModule(crop_size=48, scale=0.25, samples_per_epoch=4, batch_size=2)
        task = CompressionTask(bottleneck=4, generator={"width": 0.05, "residual_blocks": 1},
                               discriminator={"scales": 2, "ndf": 4, "n_layers": 2})
    data.setup("fit")
    batch = one_sample(data)
    before = {k: v.clone() for k, v in task.state_dict().items()}
    costs = forward_costs(task, batch)
    example = task.prepare(batch)
    with torch.no_grad():
        fake = task.eval().generate(example, task.generator)
    g_input = example.condition if example.condition is not None else example.real
    d_input = torch.cat([example.condition, fake], 1) if family == "pix2pix" else fake
    assert costs["generator"] == ("x".join(map(str, g_input.shape)), _convolution_flops(task.generator, g_input))
    assert costs["discriminator"] == ("x".join(map(str, d_input.shape)), _convolution_flops(task.discriminator, d_input))
    assert costs["generator"][1] > 0
    # Counting changed nothing the run keeps (batch-norm statistics, spectral-norm vectors).
    assert all(torch.equal(before[k], v) for k, v in task.state_dict().items())
