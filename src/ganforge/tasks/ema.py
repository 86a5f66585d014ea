"""The exponential moving average of the generator's weights (model.ema_decay).

The average is a copy of the generator with gradients off; after every generator step its
parameters move towards the generator's by (1 - decay), and its buffers (batch-norm
statistics) are copied. The decay is warmed up as min(decay, (1 + t) / (10 + t)) after t
updates, so early averages are not dominated by the initial weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["average_of", "update_average"]


def average_of(generator: nn.Module) -> nn.Module:
    """A frozen copy of `generator` to average into."""
    return copy.deepcopy(generator).requires_grad_(False)


@torch.no_grad()
def update_average(average: nn.Module, generator: nn.Module, updates: torch.Tensor, decay: float) -> None:
    """One EMA update of `average` towards `generator`; `updates` (a 0-d long tensor, the
    count so far, kept in the checkpoint) is incremented in place."""
    t = float(updates)
    weight = min(decay, (1 + t) / (10 + t))
    for mean, current in zip(average.parameters(), generator.parameters()):
        mean.lerp_(current.detach(), 1 - weight)
    for mean, current in zip(average.buffers(), generator.buffers()):
        mean.copy_(current)
    updates += 1
