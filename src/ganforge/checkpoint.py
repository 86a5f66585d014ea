"""Reading ganforge checkpoints safely and rebuilding the task that wrote them.

A checkpoint is a file users download from strangers, so it is always read with
``torch.load(..., weights_only=True)``: tensors, numbers, strings and containers are
restored, and nothing in the file can make Python run code. The task is rebuilt from
the hyper-parameters saved in it (plain values), never from a pickled object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ganforge.errors import UserError

__all__ = ["FAMILIES", "checkpoint_family", "load_task", "read_checkpoint"]

# model family -> (task class path, the model= option that trains it)
FAMILIES = {
    "pix2pix": ("ganforge.tasks.pix2pix.Pix2PixTask", "model=pix2pix or model=pix2pix_small"),
    "compression": ("ganforge.tasks.compression.CompressionTask", "model=compression"),
}


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dictionary, loaded on the CPU with weights_only=True.

    Raises a UserError naming the file for a missing, truncated or foreign file.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder: pass a checkpoint file such as {path}/checkpoints/last.ckpt")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated zip, a pickle with code in it, not a checkpoint at all
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"cannot read checkpoint {path} ({first_line}): the file is damaged or not a checkpoint") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserError(f"{path} is not a Lightning checkpoint (no state_dict): pass a .ckpt written by ganforge train")
    return checkpoint


def checkpoint_family(checkpoint: dict[str, Any]) -> str | None:
    """'pix2pix', 'compression' or None, from the saved hyper-parameters."""
    hyper = checkpoint.get("hyper_parameters") or {}
    if "quantizer" in hyper:
        return "compression"
    if "lambda_l1" in hyper:
        return "pix2pix"
    return None


def load_task(path: str | Path, family: str | None = None):
    """The task a checkpoint was written by, with its trained weights, in eval mode.

    family: require this model family ('pix2pix' or 'compression'); None accepts either.
    The generator's moving average (model.ema_decay), when the checkpoint has one, is
    loaded too and is what `task.inference_generator` returns.
    """
    import importlib

    checkpoint = read_checkpoint(path)
    found = checkpoint_family(checkpoint)
    if found is None:
        raise UserError(f"{path} was not written by a ganforge model (no model hyper-parameters in it)")
    if family is not None and found != family:
        raise UserError(f"{path} is a {found} checkpoint; this command needs a {family} one ({FAMILIES[family][1]})")
    module_name, class_name = FAMILIES[found][0].rsplit(".", 1)
    task_class = getattr(importlib.import_module(module_name), class_name)
    try:
        task = task_class(**checkpoint["hyper_parameters"])
        task.setup("predict")
        task.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, ValueError, KeyError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{path} does not match the {found} model it names ({first_line}): the file is damaged") from None
    return task.eval()
