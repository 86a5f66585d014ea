"""Writing and running the two export formats: ONNX (torch.onnx's dynamo exporter, checked
with onnxruntime) and TorchScript (torch.jit.trace)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from ganforge.cli.export import Description

__all__ = ["export_onnx", "export_torchscript", "run_exported"]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what tracing says to developers (torch.onnx's registry notes, onnxscript's
    optimizer notes, TracerWarnings about shape checks whose outcome the multiple fixes,
    deprecations): the exported file is checked against PyTorch instead."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_onnx(network, example, path: Path, description: "Description") -> None:
    import torch

    batch = torch.export.Dim("batch", min=1)
    if description.family == "generation":  # codes (and labels) in, fixed-size images out
        inputs = tuple(example)
        shapes = tuple({0: batch} for _ in inputs)
        names = [description.input_name] + (["label"] if len(inputs) > 1 else [])
    else:
        blocks = {name: torch.export.Dim(name, min=1) for name in ("height", "width")}
        inputs = (example,)
        shapes = ({0: batch, 2: description.multiple * blocks["height"], 3: description.multiple * blocks["width"]},)
        names = [description.input_name]
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(network, inputs, None, dynamo=True, dynamic_shapes=shapes,
                                    input_names=names, output_names=[description.output_name],
                                    external_data=False, verbose=False)
    program.model.metadata_props["ganforge"] = json.dumps(asdict(description))
    program.model.doc_string = f"ganforge {description.family} ({description.task}): {description.line()}"
    program.save(str(path), external_data=False)


def export_torchscript(network, example, path: Path, description: "Description") -> None:
    import torch

    # check_trace would run the network twice more; the check below runs the file itself.
    inputs = tuple(example) if isinstance(example, tuple) else (example,)
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(network, inputs, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={"ganforge.json": json.dumps(asdict(description))})


def run_exported(path: Path, format: str, x):
    """The exported file's output for `x`, or None when onnxruntime is not installed."""
    import torch

    inputs = tuple(x) if isinstance(x, tuple) else (x,)
    if format == "torchscript":
        with torch.no_grad():
            return torch.jit.load(str(path))(*inputs)
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {arg.name: value.numpy() for arg, value in zip(session.get_inputs(), inputs)}
    return torch.from_numpy(session.run(None, feeds)[0])
