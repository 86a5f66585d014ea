"""`ganforge export`: a trained generator as one ONNX or TorchScript file for inference.

    ganforge export --ckpt run/checkpoints/last.ckpt --format onnx generator.onnx
    ganforge export --ckpt run/checkpoints/last.ckpt --format torchscript generator.pt --size 512 768 --no-ema

The file holds the network that prediction runs, in eval mode (batch norm with its
running statistics, no dropout), with the generator's moving average when the checkpoint
has one (``--no-ema``: the trained generator itself). Inputs and outputs are in the
network's units, as the task's `prepare` makes them:

* pix2pix colorization (data.kind=images): "lightness" L / 50 - 1, (N, 1, H, W) ->
  "ab" ab / 110, (N, 2, H, W), Lab with the D65 white point (see ganforge.data.color).
* pix2pix on pairs: "input" RGB in [-1, 1], (N, 3, H, W) -> "output" RGB in [-1, 1].
* compression: "image" RGB in [-1, 1], (N, 3, H, W) -> "reconstruction" RGB in [-1, 1],
  (N, 3, H, W): encoder -> hard quantizer (nearest center) -> generator, the whole path,
  so the file shows what the model makes of an image. Entropy coding is not in it
  (`ganforge compress` writes real files), so exporting the encoder and the decoder on
  their own would not make a codec and is not offered.

  A model trained with sample_noise gets its noise map from z = 0, the mode of the
  Gaussian the noise is drawn from, fed through its noise generator: the output is
  deterministic and needs no second input. `ganforge decompress` draws z from a seeded
  generator instead, so its pictures differ from the exported model's in the fine
  texture the noise shapes.

N, H and W are free: H and W any multiples of the network's `multiple` (printed, and
stored in the file: ONNX metadata "ganforge", TorchScript extra file "ganforge.json").
The file does not check the sides: pad an image to a multiple (mirror padding, as
prediction does) and crop the output back. `--size H W` is the example traced; it does
not limit the sizes the file accepts, and the default, twice the multiple per side, is
the smallest that works (torch.export turns a side of one block, or a batch of one, into
a constant). Before the file is put in place it is run on an input of another size and
batch, and must match PyTorch within CHECK_TOLERANCE (ONNX through onnxruntime, when it
is installed).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ganforge.cli.export_formats import export_onnx, export_torchscript, run_exported
from ganforge.errors import UserError

__all__ = ["CHECK_TOLERANCE", "FORMATS", "Description", "describe", "export", "inference_network", "main"]

FORMATS = ("onnx", "torchscript")
# Largest |exported - PyTorch| accepted on the check input; float32 kernels differ in
# the order they add, so not zero, but far below what train-mode dropout or batch norm
# (or a size frozen into the graph) would give.
CHECK_TOLERANCE = 1e-3
# protobuf's limit for one .onnx file; larger weights would need a second file
ONNX_MAX_BYTES = 2**31 - 2**26


@dataclass(frozen=True)
class Description:
    """What an exported file computes: names, channels and units of its input and output."""

    family: str
    task: str
    generator: str  # "ema" or "raw"
    input_name: str
    input_channels: int
    input_units: str
    output_name: str
    output_channels: int
    output_units: str
    multiple: int
    noise: str | None = None
    image_size: int | None = None    # generation: the side of the images it makes
    num_classes: int | None = None   # generation: a conditional model's classes (second input "label")

    def line(self) -> str:
        """One sentence: input -> output, with shapes and units."""
        if self.family == "generation":
            label = (f' and "label" (N,) int64 in 0 .. {self.num_classes - 1}' if self.num_classes else "")
            return (f'input "{self.input_name}" (N, {self.input_channels}) = {self.input_units}{label} -> '
                    f'output "{self.output_name}" (N, {self.output_channels}, {self.image_size}, {self.image_size}) '
                    f"= {self.output_units}")
        return (f'input "{self.input_name}" (N, {self.input_channels}, H, W) = {self.input_units} -> '
                f'output "{self.output_name}" (N, {self.output_channels}, H, W) = {self.output_units}; '
                f"H and W any multiples of {self.multiple}")


def describe(task, ema: bool = True) -> Description:
    """The Description of what `inference_network(task, ema)` computes."""
    from ganforge.tasks.compression import CompressionTask

    from ganforge.tasks.registry import family_of

    generator = "ema" if ema and task.generator_ema is not None else "raw"
    if family_of(task) == "generation":
        units = "RGB in [-1, 1]" if task.image_channels == 3 else "grey in [-1, 1]"
        return Description("generation", "samples", generator, "z", task.z_dim, "a latent code ~ N(0, I)", "image",
                           task.image_channels, units, 1, image_size=task.image_size, num_classes=task.num_classes)
    if isinstance(task, CompressionTask):
        noise = None
        if task.generator.noise is not None:
            noise = "noise map from z = 0 (the mode of the noise prior), not from random noise"
        return Description("compression", "reconstruction", generator, "image", 3, "RGB in [-1, 1]",
                           "reconstruction", 3, "RGB in [-1, 1]", task.multiple, noise)
    if task.data_kind == "images":
        return Description("pix2pix", "colorization", generator, "lightness", 1, "L / 50 - 1 (Lab L in [0, 100])",
                           "ab", 2, "(a, b) / 110 (Lab, D65)", task.multiple)
    return Description("pix2pix", "pairs", generator, "input", 3, "RGB in [-1, 1]", "output", 3,
                       "RGB in [-1, 1]", task.multiple)


@functools.cache
def _compression_path() -> type:
    """The wrapper class, defined on first use so that importing this module (and every
    mistake caught before the checkpoint is read) does not wait for torch."""
    import torch
    from torch import nn

    class CompressionPath(nn.Module):
        """image (N, 3, H, W) in [-1, 1] -> reconstruction (N, 3, H, W) in [-1, 1], for H, W
        multiples of 16: encoder, hard quantizer, the noise map of z = 0 if the model has
        a noise generator, generator."""

        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            model = self.model
            w_bar = model.quantizer(model.encode(image))
            if model.noise is not None:
                w_bar = torch.cat([w_bar, self.zero_noise_map(w_bar).to(w_bar.dtype)], dim=1)
            return model.generator(w_bar)

        def zero_noise_map(self, w_bar: torch.Tensor) -> torch.Tensor:
            # NoiseGenerator.forward with zeros for torch.randn; its math.ceil would turn the
            # traced side into a constant, (side + 7) // 8 keeps it symbolic.
            noise = self.model.noise
            batch, height, width = w_bar.shape[0], w_bar.shape[-2], w_bar.shape[-1]
            z = w_bar.new_zeros((batch, noise.noise_dim, (height + 7) // 8, (width + 7) // 8))
            return noise.out(noise.up(noise.dense(z)))[..., :height, :width]

    return CompressionPath


def inference_network(task, ema: bool = True):
    """The module that is exported, in eval mode: tensor in network units -> tensor (see
    the module docstring). ema=False takes `task.generator` over the moving average."""
    from ganforge.tasks.compression import CompressionTask

    generator = task.inference_generator if ema else task.generator
    network = _compression_path()(generator) if isinstance(task, CompressionTask) else generator
    return network.eval()


def _generation_inputs(description: Description, batch: int, seed: int):
    """(z,) or (z, labels) for a generation model: `batch` codes (and classes 0, 1, ...)."""
    import torch

    z = torch.randn(batch, description.input_channels, generator=torch.Generator().manual_seed(seed))
    if not description.num_classes:
        return (z,)
    return z, torch.arange(batch) % description.num_classes


def _example_size(size: list[int] | None, multiple: int) -> tuple[int, int]:
    if size is None:
        return 2 * multiple, 2 * multiple
    height, width = size
    if any(s % multiple or s < 2 * multiple for s in size):
        raise UserError(f"--size {height} {width}: the sides must be multiples of {multiple} and at least "
                        f"{2 * multiple} (e.g. --size {2 * multiple} {2 * multiple})")
    return height, width


def _check_size(example: tuple[int, int], multiple: int, minimum: int) -> tuple[int, int]:
    """A small non-square size whose sides both differ from the example's."""
    candidates = [minimum + k * multiple for k in range(3)]
    height = next(s for s in candidates if s != example[0])
    width = next(s for s in candidates if s not in (example[1], height))
    return height, width


def _check_output(output: Path, format: str) -> None:
    """Fail early on an output that cannot be written (write_atomically checks again)."""
    if output.is_dir():
        example = output / ("generator.onnx" if format == "onnx" else "generator.pt")
        raise UserError(f"{output} is a folder: give the file to write, e.g. {example}")
    folder = output.parent.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # write_atomically makes the missing folders
    if not folder.is_dir():
        raise UserError(f"cannot write {output}: {folder} is a file, not a folder; choose another output")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {output}: no permission to write in {folder}; choose another output")


def export(checkpoint: str | Path, output: str | Path, format: str, size: list[int] | None = None,
           ema: bool = True) -> str:
    """Export the checkpoint's inference network to `output`; returns the line to print.

    Raises UserError for a bad checkpoint, size or output, or a file that does not match
    PyTorch; `output` is then left as it was.
    """
    # The checks that need no torch come first: a mistake is reported in a fraction of a
    # second, not after the checkpoint is loaded and the network traced.
    output = Path(output)
    _check_output(output, format)
    if format == "onnx":
        missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
        if missing:
            raise UserError(f"--format onnx needs {' and '.join(missing)}: pip install 'ganforge[export]'")
    import torch

    from ganforge.checkpoint import load_task
    from ganforge.cli.files import write_atomically
    from ganforge.tasks.compression import CompressionTask

    task = load_task(checkpoint)
    description = describe(task, ema)
    network = inference_network(task, ema)
    multiple = description.multiple
    generation = description.family == "generation"
    if generation and size is not None:
        raise UserError(f"--size is for image-to-image models; this one makes {description.image_size}x"
                        f"{description.image_size} images from latent codes: drop --size")
    height, width = _example_size(size, multiple)
    weight_bytes = sum(t.numel() * t.element_size() for t in network.state_dict().values())
    if format == "onnx" and weight_bytes > ONNX_MAX_BYTES:
        raise UserError(f"the network has {weight_bytes / 2**30:.1f} GiB of weights, more than one .onnx file holds: "
                        "use --format torchscript")
    if generation:
        # Batch 2 traced, checked on batch 3 (torch.export fixes a dimension whose example is 1).
        example, check_input = _generation_inputs(description, 2, 0), _generation_inputs(description, 3, 1)
        check_what = f"a batch of {check_input[0].shape[0]} codes"
    else:
        example = torch.rand(2, description.input_channels, height, width,
                             generator=torch.Generator().manual_seed(0)) * 2 - 1
        # Instance norm needs more than one value per channel at the encoder's last layer.
        minimum = 2 * multiple if isinstance(task, CompressionTask) else multiple
        check_height, check_width = _check_size((height, width), multiple, minimum)
        check_input = torch.rand(1, description.input_channels, check_height, check_width,
                                 generator=torch.Generator().manual_seed(1)) * 2 - 1
        check_what = f"a {check_height}x{check_width} input"
    with torch.no_grad():
        expected = network(*check_input) if generation else network(check_input)
    report = {}

    def write(temporary: Path) -> None:
        (export_onnx if format == "onnx" else export_torchscript)(network, example, temporary, description)
        actual = run_exported(temporary, format, check_input)
        if actual is None:
            report["check"] = "not checked (onnxruntime is not installed)"
            return
        if actual.shape != expected.shape:
            raise UserError(f"the exported model gives shape {tuple(actual.shape)} for {check_what}, "
                            f"PyTorch {tuple(expected.shape)}: nothing written (please report this)")
        difference = (actual - expected).abs().max().item()
        if not difference <= CHECK_TOLERANCE:
            raise UserError(f"the exported model differs from PyTorch by {difference:.2g} on {check_what}: "
                            "nothing written (please report this)")
        shown = "x".join(map(str, (check_input[0] if generation else check_input).shape))
        report["check"] = f"checked against PyTorch on a {shown} input: largest difference {difference:.1g}"

    write_atomically(output, write)
    generator = {"ema": "moving-average generator", "raw": "generator"}[description.generator]
    noise = f"; {description.noise}" if description.noise else ""
    return (f"{output}: {'ONNX' if format == 'onnx' else 'TorchScript'}, {description.family} {description.task}, "
            f"{generator} in eval mode: {description.line()}{noise}; {report['check']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ganforge export",
        description="Export a checkpoint's generator (eval mode, moving average if any) to ONNX or TorchScript, "
                    "with free batch, height and width.",
    )
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by ganforge train")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx (needs ganforge[export]) or torchscript")
    parser.add_argument("--size", nargs=2, type=int, metavar=("H", "W"),
                        help="the example input traced (default: twice the network's multiple); any multiple works later")
    parser.add_argument("--no-ema", action="store_true", help="export the trained generator, not its moving average")
    parser.add_argument("output", metavar="OUT", help="the file to write, e.g. generator.onnx or generator.pt")
    args = parser.parse_args(argv)
    from ganforge.cli.errors import report_user_errors

    with report_user_errors():
        print(export(args.ckpt, args.output, args.format, args.size, ema=not args.no_ema), flush=True)
