"""`ganforge export`: the exported file computes what PyTorch does in eval mode, at sizes
other than the one traced, and mistakes end in one line with nothing half-written."""

import json
import os
import subprocess
from pathlib import Path
from unittest import mock

import pytest
import torch

from ganforge.checkpoint import load_task
from ganforge.cli.export import main
from ganforge.errors import UserError
from ganforge.nn.quantize import CHUNK, SoftToHardQuantizer
from ganforge.tasks import Pix2PixTask
from tests.cli.helpers import run_cli

TOLERANCE = 1e-4


def ganforge(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=300)


def run_exported(path: Path, format: str, x: torch.Tensor) -> torch.Tensor:
    if format == "torchscript":
        with torch.no_grad():
            return torch.jit.load(str(path))(x)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def zero_noise_reference(task, x: torch.Tensor) -> torch.Tensor:
    """The compression path as training code runs it, with z = 0 for the noise."""
    def zeros(*size, generator=None, device=None, **_):
        return torch.zeros(*size, device=device)

    with torch.no_grad(), mock.patch.object(torch, "randn", zeros):
        return task.inference_generator(x)[0]


def random_input(channels: int, height: int, width: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def spectral_pairs_checkpoint(tmp_path_factory) -> Path:
    """An untrained pix2pix for A|B pairs with spectral norm: no training needed to show
    that the parametrized weights and three channels in and out export."""
    task = Pix2PixTask(data_kind="pairs", generator={"num_downs": 5, "ngf": 4},
                       discriminator={"ndf": 4, "n_layers": 2}, norm="spectral")
    task.setup("fit")
    path = tmp_path_factory.mktemp("ckpt") / "spectral.ckpt"
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}, path)
    return path


def test_the_quantizers_traceable_path_gives_the_same_bits():
    """Without a gradient the quantizer runs plain tensor operations that a trace records
    for any size; they must agree bit for bit with the autograd Function's chunked path,
    ties on midpoints included."""
    torch.manual_seed(0)
    for centers, learnable, dtype in (([-2, -1, 0, 1, 2], False, torch.float32), ([1.5, -0.3, 0.2], True, torch.float32),
                                      ([-2, -1, 0, 1, 2], False, torch.float64)):
        q = SoftToHardQuantizer(centers, learnable=learnable).to(dtype)
        values = q.centers.detach()
        w = torch.cat([torch.randn(CHUNK + 1000, dtype=dtype) * 3, (values[1:] + values[:-1]) / 2, values])
        w = w.view(1, 1, 1, -1).requires_grad_(True)
        with_gradient = q(w)
        with torch.no_grad():
            without = q(w)
        assert with_gradient.requires_grad and not without.requires_grad
        assert torch.equal(with_gradient.detach(), without)


# Each family in both formats; every ONNX export runs in this process, which pays
# torch.onnx's start-up once. The pix2pix TorchScript export with batch norm and dropout
# runs through the command line below.
@pytest.mark.parametrize("family, format", [
    ("pix2pix_dropout_checkpoint", "onnx"),
    ("spectral_pairs_checkpoint", "torchscript"),
    ("compression_checkpoint", "torchscript"),
    ("noisy_checkpoint", "onnx"),
    ("noisy_checkpoint", "torchscript"),
])
def test_the_export_matches_pytorch_at_another_size(request, tmp_path, capsys, family, format):
    checkpoint = request.getfixturevalue(family)
    output = tmp_path / f"generator.{format}"
    main(["--ckpt", str(checkpoint), "--format", format, str(output)])
    printed = capsys.readouterr().out
    assert printed.startswith(f"{output}: ") and "eval mode" in printed
    task = load_task(checkpoint)
    if family == "compression_checkpoint" or family == "noisy_checkpoint":
        # 48x48 crops in training, traced at 32x32: neither size, not square, batch 3
        x = random_input(3, 80, 112, batch=3)
        expected = zero_noise_reference(task, x)
        assert 'input "image" (N, 3, H, W)' in printed and "multiples of 16" in printed
        assert ("z = 0" in printed) == (family == "noisy_checkpoint")
    else:
        # 64x64 crops for the dropout model; the spectral one never trained
        channels, multiple = (1, 64) if family == "pix2pix_dropout_checkpoint" else (3, 32)
        x = random_input(channels, 3 * multiple, 2 * multiple, batch=3)
        with torch.no_grad():
            expected = task.inference_generator(x)
        assert f"(N, {channels}, H, W)" in printed and f"multiples of {multiple}" in printed
    actual = run_exported(output, format, x)
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max().item() < TOLERANCE
    if family == "pix2pix_dropout_checkpoint":  # the comparison can fail: train mode differs
        with torch.no_grad():
            torch.manual_seed(0)
            assert (actual - task.inference_generator.train()(x)).abs().max().item() > 100 * TOLERANCE
    if format == "torchscript":
        extra = {"ganforge.json": ""}
        torch.jit.load(str(output), _extra_files=extra)
        description = json.loads(extra["ganforge.json"])
    else:
        import onnx

        model = onnx.load(str(output))
        description = json.loads({p.key: p.value for p in model.metadata_props}["ganforge"])
    assert description["multiple"] == task.multiple and description["input_channels"] == x.shape[1]


def test_the_cli_exports_batch_norm_and_dropout_in_eval_mode(tmp_path, pix2pix_dropout_checkpoint):
    """The file runs what validation and prediction run: the moving average, batch norm
    with running statistics, no dropout; a train-mode export would differ."""
    output = tmp_path / "colorize.pt"
    result = ganforge("export", "--ckpt", str(pix2pix_dropout_checkpoint), "--format", "torchscript", str(output))
    assert result.returncode == 0, result.stderr
    assert "moving-average generator in eval mode" in result.stdout and "checked against PyTorch" in result.stdout
    assert 'input "lightness" (N, 1, H, W)' in result.stdout and 'output "ab" (N, 2, H, W)' in result.stdout
    assert not result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["colorize.pt"]  # no temporary file left
    task = load_task(pix2pix_dropout_checkpoint)
    x = random_input(1, 192, 128)  # trained on 64x64 crops, traced at 128x128
    actual = run_exported(output, "torchscript", x)
    with torch.no_grad():
        expected = task.inference_generator.eval()(x)
        torch.manual_seed(0)
        train_mode = task.inference_generator.train()(x)
    assert (actual - expected).abs().max().item() < TOLERANCE
    assert (actual - train_mode).abs().max().item() > 100 * TOLERANCE


def test_no_ema_exports_the_trained_generator(tmp_path, capsys, pix2pix_dropout_checkpoint):
    # Two training steps leave the average within 1e-4 of the generator: move it away.
    checkpoint = torch.load(pix2pix_dropout_checkpoint, map_location="cpu", weights_only=True)
    for name, tensor in checkpoint["state_dict"].items():
        if name.startswith("generator_ema.") and name.endswith(".bias"):
            tensor.add_(0.5)
    path = tmp_path / "moved.ckpt"
    torch.save(checkpoint, path)
    task = load_task(path)
    x = random_input(1, 64, 128)
    with torch.no_grad():
        raw, average = task.generator(x), task.inference_generator(x)
    assert (raw - average).abs().max().item() > 100 * TOLERANCE
    output = tmp_path / "generator.pt"
    main(["--ckpt", str(path), "--format", "torchscript", "--no-ema", str(output)])
    assert ", pix2pix colorization, generator in eval mode" in capsys.readouterr().out
    assert (run_exported(output, "torchscript", x) - raw).abs().max().item() < TOLERANCE


# The mistakes found before the checkpoint is read, through the command line as a user
# meets them (these cost a Python start-up, not a torch import).
@pytest.mark.parametrize("case", ["unknown format", "output under a file", "read-only folder", "output is a folder"])
def test_mistakes_end_in_one_line_and_leave_the_output_alone(tmp_path, case):
    if case == "read-only folder" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    output = tmp_path / "model.onnx"
    output.write_bytes(b"an earlier export")
    ckpt, format = str(tmp_path / "model.ckpt"), "onnx"
    (tmp_path / "model.ckpt").write_bytes(b"not read: the output is checked first")
    if case == "unknown format":
        format, words = "tflite", "invalid choice: 'tflite'"
    elif case == "output under a file":
        output, words = output / "model.onnx", "is a file, not a folder"
    elif case == "read-only folder":
        (tmp_path / "locked").mkdir()
        output = tmp_path / "locked" / "model.onnx"
        (tmp_path / "locked").chmod(0o500)
        words = "no permission to write"
    else:
        output, words = tmp_path, "is a folder"
    try:
        result = ganforge("export", "--ckpt", ckpt, "--format", format, str(output))
    finally:
        if (tmp_path / "locked").exists():
            (tmp_path / "locked").chmod(0o700)  # so pytest can clean up
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("ganforge export: error:" if case == "unknown format" else "error:")
    assert len(lines) == 1 or case == "unknown format"  # argparse prints its usage first
    assert (tmp_path / "model.onnx").read_bytes() == b"an earlier export"
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temporary file left behind


@pytest.mark.parametrize("case", ["missing checkpoint", "size not a multiple"])
def test_mistakes_found_in_the_checkpoint_end_in_one_line(tmp_path, capsys, case, spectral_pairs_checkpoint):
    output = tmp_path / "generator.pt"
    output.write_bytes(b"an earlier export")
    if case == "missing checkpoint":
        args, message = ["--ckpt", str(tmp_path / "none.ckpt")], f"checkpoint not found: {tmp_path / 'none.ckpt'}"
    else:
        args = ["--ckpt", str(spectral_pairs_checkpoint), "--size", "100", "64"]
        message = "--size 100 64: the sides must be multiples of 32 and at least 64 (e.g. --size 64 64)"
    with pytest.raises(SystemExit) as exit:
        main([*args, "--format", "torchscript", str(output)])
    assert exit.value.code == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["generator.pt"] and output.read_bytes() == b"an earlier export"


def test_a_failed_or_refused_export_leaves_the_old_file(tmp_path, spectral_pairs_checkpoint, monkeypatch):
    import ganforge.cli.export as export_module

    output = tmp_path / "generator.pt"
    output.write_bytes(b"an earlier export")

    def half_written(network, example, path, description):
        path.write_bytes(b"half a mod")
        raise KeyboardInterrupt  # a kill in the middle of writing

    with monkeypatch.context() as patch:
        patch.setattr(export_module, "export_torchscript", half_written)
        with pytest.raises(KeyboardInterrupt):
            export_module.export(spectral_pairs_checkpoint, output, "torchscript")
    real_run = export_module.run_exported
    monkeypatch.setattr(export_module, "run_exported", lambda *args: real_run(*args) + 0.01)
    with pytest.raises(UserError, match="differs from PyTorch by 0.01 .*nothing written"):
        export_module.export(spectral_pairs_checkpoint, output, "torchscript")
    assert output.read_bytes() == b"an earlier export"
    assert [p.name for p in tmp_path.iterdir()] == ["generator.pt"]
