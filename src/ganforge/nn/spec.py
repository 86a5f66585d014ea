"""Building a frozen option dataclass (NormSpec, ActSpec) from what a config holds."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

from ganforge.errors import ConfigError

__all__ = ["merge_spec"]

Spec = TypeVar("Spec")


def merge_spec(cls: type[Spec], spec: Any, base: Spec, group: str) -> Spec:
    """`spec` over `base`: an instance is taken as it is, a name replaces the kind and
    keeps base's options, a mapping replaces the fields it names."""
    if isinstance(spec, cls):
        return spec
    if isinstance(spec, str):
        return dataclasses.replace(base, kind=spec)
    if isinstance(spec, Mapping):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ConfigError(f"unknown {group} option(s) {unknown}: the options are {sorted(known)}")
        return dataclasses.replace(base, **spec)
    raise ConfigError(f"{group} must be a name or a mapping with 'kind', got {spec!r}")
