"""Activations, chosen by one config value for every network that uses it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from ganforge.checks import check_number
from ganforge.errors import ConfigError
from ganforge.nn.spec import merge_spec

__all__ = ["ACT_KINDS", "ActSpec", "make_act"]

ACT_KINDS = ("relu", "lrelu", "elu", "selu", "gelu")


@dataclass(frozen=True)
class ActSpec:
    """Which activation a network uses.

    kind: relu, lrelu (LeakyReLU with negative `slope`), elu (with `alpha`), selu, gelu.
    In configs, kind "paper" keeps each network's published activation (see `from_config`).
    """

    kind: str = "relu"
    slope: float = 0.2
    alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ACT_KINDS:
            raise ConfigError(
                f"unknown activation {self.kind!r}: choose paper or one of {', '.join(ACT_KINDS)} (e.g. act=lrelu)"
            )
        check_number("act.slope", self.slope, 0)
        check_number("act.alpha", self.alpha, 0)

    @classmethod
    def from_config(cls, spec: "ActSpec | Mapping[str, Any] | str | None", default: "ActSpec") -> "ActSpec":
        """Build from a kind name, a mapping of fields, or None (meaning `default`).

        The kind "paper" also means `default`: each network's published activation.
        """
        kind = spec.get("kind") if isinstance(spec, Mapping) else spec
        if spec is None or kind == "paper":
            return default
        return merge_spec(cls, spec, default, "act")

    def layer(self) -> nn.Module:
        return make_act(self.kind, slope=self.slope, alpha=self.alpha)


def make_act(kind: str, slope: float = 0.2, alpha: float = 1.0) -> nn.Module:
    """The activation module of `kind`; shape-preserving, never in place.

    In-place activations would overwrite tensors that U-Net skip connections still hold.
    """
    if kind == "relu":
        return nn.ReLU()
    if kind == "lrelu":
        return nn.LeakyReLU(slope)
    if kind == "elu":
        return nn.ELU(alpha)
    if kind == "selu":
        return nn.SELU()
    if kind == "gelu":
        return nn.GELU()
    raise ConfigError(f"unknown activation {kind!r}: choose one of {', '.join(ACT_KINDS)}")
