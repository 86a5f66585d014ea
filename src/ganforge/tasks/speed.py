"""The speed options of the loop (model.optim.fused, model.channels_last, model.compile):
none changes what a step computes beyond rounding."""

from __future__ import annotations

import logging
from typing import Any, Iterable, MutableMapping

import torch
from torch import nn

from ganforge.checks import check_bool
from ganforge.compat import compile_backends, fused_adam_supported
from ganforge.errors import ConfigError

__all__ = ["SpeedOptions", "adam", "channels_last_batch", "check_compile_backend", "compile_networks",
           "to_channels_last"]

log = logging.getLogger("ganforge")


def adam(parameters: Iterable[torch.Tensor], lr: float, betas: tuple[float, float], fused: bool) -> torch.optim.Adam:
    """Adam; fused (one kernel for the whole update) when asked and torch has a fused kernel
    for these parameters' device and dtype."""
    parameters = list(parameters)
    use_fused = fused and fused_adam_supported(parameters)
    return torch.optim.Adam(parameters, lr=lr, betas=betas, **({"fused": True} if use_fused else {}))


def check_compile_backend(backend: str) -> str:
    backends = compile_backends()
    if backend not in backends:
        raise ConfigError(f"model.compile_backend={backend} is not a torch.compile backend: "
                          f"choose one of {', '.join(sorted(backends))} (inductor is the default)")
    return backend


def to_channels_last(networks: Iterable[nn.Module]) -> None:
    for network in networks:
        network.to(memory_format=torch.channels_last)


def compile_networks(networks: Iterable[nn.Module], backend: str, skip: nn.Module | None = None) -> None:
    """torch.compile each network in place (nn.Module.compile: state-dict keys, checkpoints,
    the EMA and export are unchanged); `skip`, a discriminator trained with a gradient
    penalty, stays uncompiled: torch.compile cannot differentiate twice."""
    for network in networks:
        if network is skip:
            log.info("model.compile: the discriminator stays uncompiled, because torch.compile cannot "
                     "differentiate the gradient penalty twice")
            continue
        network.compile(backend=backend)


def channels_last_batch(batch: Any) -> None:
    """Turn a batch's images (4-d tensors) to channels-last in place. (The batch hooks see
    the dict that the step gets; overriding on_after_batch_transfer instead would make
    Lightning warn in every run that passes a DataModule.)"""
    if isinstance(batch, MutableMapping):
        for key, value in batch.items():
            if isinstance(value, torch.Tensor) and value.dim() == 4:
                batch[key] = value.contiguous(memory_format=torch.channels_last)


class SpeedOptions:
    """model.channels_last, model.compile and model.compile_backend, checked once and applied
    by the task's hooks: `networks` in configure_model, `batch` before every step."""

    def __init__(self, channels_last: bool = False, compile: bool = False, backend: str = "inductor") -> None:
        self.channels_last = check_bool("model.channels_last", channels_last)
        self.compile = check_bool("model.compile", compile)
        self.backend = check_compile_backend(str(backend)) if self.compile else str(backend)
        self.compiled = False

    def networks(self, networks: list[nn.Module], fitting: bool, skip: nn.Module | None) -> None:
        """Channels-last for every network (the EMA included), compiled once for training;
        `skip`, a penalized discriminator, stays uncompiled (see compile_networks). Called
        after the EMA exists: a deep copy of a compiled module would call the original."""
        if self.channels_last:
            to_channels_last(networks)
        if self.compile and fitting and not self.compiled:
            compile_networks(networks, self.backend, skip=skip)
            self.compiled = True

    def batch(self, batch: Any) -> None:
        if self.channels_last:
            channels_last_batch(batch)
