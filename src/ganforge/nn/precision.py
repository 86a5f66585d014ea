"""Parts of a computation that must stay in float32 under mixed precision."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["without_autocast"]


def without_autocast(tensor: torch.Tensor):
    """A context in which autocast is off for `tensor`'s device (bf16-mixed / 16-mixed
    would otherwise run matrix products and convolutions in half precision inside it)."""
    device = tensor.device.type
    if torch.amp.is_autocast_available(device):
        return torch.autocast(device, enabled=False)
    return contextlib.nullcontext()
