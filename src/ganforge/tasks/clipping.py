"""Gradient clipping (model.grad_clip) that is right under mixed precision."""

from __future__ import annotations

from typing import Any

import torch

from ganforge.tasks.options import GradClip

__all__ = ["clip_gradients", "loss_scaler"]


def loss_scaler(trainer: Any) -> torch.amp.GradScaler | None:
    """The GradScaler of float16 mixed precision (trainer.precision=16-mixed), else None."""
    if trainer is None:
        return None
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    return scaler if scaler is not None and scaler.is_enabled() else None


def clip_gradients(task: Any, optimizer: torch.optim.Optimizer, clip: GradClip,
                   scaler: torch.amp.GradScaler | None) -> None:
    """Clip the gradients of `optimizer`'s parameters by `clip`, inside the manual loop.

    Without mixed precision this is Lightning's `clip_gradients`. Under mixed precision
    Lightning's would clip the gradients as they are here, before optimizer.step(), where
    its plugin unscales them: still multiplied by the loss scale under 16-mixed. Clipping
    them at value * scale is the same as unscaling, clipping at value and scaling again
    (the scale is a power of two). It also refuses fused optimizers, which unscale inside
    their step. Inf or NaN gradients stay non-finite, so the scaler still skips that step.
    """
    from lightning.pytorch.plugins.precision import MixedPrecision

    value, algorithm = clip.value, clip.algorithm
    if not isinstance(task.trainer.precision_plugin, MixedPrecision):
        task.clip_gradients(optimizer, gradient_clip_val=value, gradient_clip_algorithm=algorithm)
        return
    if scaler is not None:
        value = value * scaler.get_scale()
    parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if algorithm == "norm":
        torch.nn.utils.clip_grad_norm_(parameters, value)
    else:
        torch.nn.utils.clip_grad_value_(parameters, value)
