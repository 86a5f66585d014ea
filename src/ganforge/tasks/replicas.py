"""The networks as data parallel training calls them: one DistributedDataParallel wrapper
per network (ganforge.distributed.GANDDPStrategy), kept outside the module tree so that
state dicts and checkpoints stay those of a single process."""

from __future__ import annotations

import contextlib
from typing import Callable

from torch import nn

__all__ = ["NetworkReplicas"]


class NetworkReplicas:
    """Each network's wrapper, by name ("generator", "discriminator"), or none."""

    def __init__(self) -> None:
        self._wrapped: dict[str, nn.Module] = {}

    def wrap(self, networks: dict[str, nn.Module], wrap: Callable[[nn.Module], nn.Module]) -> None:
        self._wrapped = {name: wrap(network) for name, network in networks.items()}

    def wrappers(self) -> list[nn.Module]:
        """The DistributedDataParallel wrappers (empty when not distributed)."""
        return list(self._wrapped.values())

    def clear(self) -> None:
        self._wrapped = {}

    def get(self, name: str, network: nn.Module) -> nn.Module:
        """The wrapper of `name` when there is one, else `network` itself."""
        return self._wrapped.get(name, network)

    def frozen(self, name: str):
        """A context for a forward of `name` whose parameters take no gradient (D's forward in
        G's step): its wrapper must not wait for them (DistributedDataParallel.no_sync)."""
        wrapper = self._wrapped.get(name)
        return wrapper.no_sync() if wrapper is not None else contextlib.nullcontext()
