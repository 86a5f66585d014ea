"""The networks as data parallel training calls them: one DistributedDataParallel wrapper
per network (ganforge.distributed.GANDDPStrategy), kept outside the module tree so that
state dicts and checkpoints stay those of a single process."""

from __future__ import annotations

import contextlib
from typing import Callable

from torch import nn

__all__ = ["DistributedNetworks", "NetworkReplicas"]


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


class DistributedNetworks:
    """What GANDDPStrategy calls on a task (mixed into GANTask, which holds `replicas`,
    `generator` and `discriminator`)."""

    replicas: NetworkReplicas

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Train through `wrap(self.generator)` and `wrap(self.discriminator)`: each network
        gets its own DistributedDataParallel (ganforge.distributed.GANDDPStrategy), so each
        backward pass synchronizes exactly the network it trains."""
        self.replicas.wrap({"generator": self.generator, "discriminator": self.discriminator}, wrap)

    def undistribute(self) -> None:
        self.replicas.clear()

    def trained(self, name: str) -> nn.Module:
        """The network `name` ("generator" or "discriminator") as training calls it: its
        distributed wrapper when there is one."""
        return self.replicas.get(name, getattr(self, name))

