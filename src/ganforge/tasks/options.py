"""The training options every GAN family shares, as small validated dataclasses (like
`ganforge.nn.NormSpec`): the optimizer, the learning-rate decay, gradient clipping.

Each is built from what a config holds (`from_config(mapping)`), checks its values with
one-line ConfigErrors naming the `model.*` key, and is frozen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from ganforge.checks import check_bool, check_choice, check_int, check_number
from ganforge.errors import ConfigError

__all__ = ["GradClip", "LrDecay", "OptimOptions", "from_config"]

Options = TypeVar("Options")


def from_config(cls: type[Options], value: Options | Mapping[str, Any] | None, key: str) -> Options:
    """`cls` from an instance (as it is), a mapping of its fields (unknown ones refused
    naming `key`), or None (the defaults)."""
    if isinstance(value, cls):
        return value
    fields = [f.name for f in dataclasses.fields(cls)]
    given = dict(value or {})
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {key} option(s) {unknown}: the options are {', '.join(fields)}")
    return cls(**given)


@dataclass(frozen=True)
class OptimOptions:
    """Adam for both networks (model.optim).

    fused: torch's fused Adam kernel where torch has one for the parameters' device and
    dtype (CPU, CUDA, ...), else its default (foreach) Adam; the same update in one kernel.
    """

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    fused: bool = True

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # frozen: normalise the values once, here
        set_field(self, "lr_g", check_number("model.optim.lr_g", self.lr_g, 0, open_minimum=True))
        set_field(self, "lr_d", check_number("model.optim.lr_d", self.lr_d, 0, open_minimum=True))
        betas = tuple(self.betas)
        if len(betas) != 2:
            raise ConfigError(f"model.optim.betas must be two numbers such as [0.5, 0.999], got {list(betas)}")
        set_field(self, "betas", tuple(check_number("model.optim.betas", b, 0, 1, open_maximum=True) for b in betas))
        set_field(self, "fused", check_bool("model.optim.fused", self.fused))


@dataclass(frozen=True)
class LrDecay:
    """pix2pix's "linear" policy (model.lr_decay): a constant learning rate until
    `start_epoch`, then a linear decay to 0 over `epochs` epochs; epochs 0 = off."""

    start_epoch: int = 0
    epochs: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_epoch", check_int("model.lr_decay.start_epoch", self.start_epoch or 0, 0))
        object.__setattr__(self, "epochs", check_int("model.lr_decay.epochs", self.epochs or 0, 0))

    @property
    def enabled(self) -> bool:
        return self.epochs > 0

    def factor(self, epoch: int) -> float:
        """The learning rate's multiplier in `epoch`."""
        return max(0.0, 1.0 - max(0, epoch - self.start_epoch) / float(self.epochs + 1))


@dataclass(frozen=True)
class GradClip:
    """Clip each network's gradients (model.grad_clip): by their norm or value; value None = off."""

    value: float | None = None
    algorithm: str = "norm"

    def __post_init__(self) -> None:
        if self.value is not None:
            check_number("model.grad_clip.value", self.value, 0, open_minimum=True)
        check_choice("model.grad_clip.algorithm", self.algorithm, ("norm", "value"))

    @property
    def enabled(self) -> bool:
        return self.value is not None
