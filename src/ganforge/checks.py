"""Checks of config values that raise a `ConfigError` naming the key and what it needs.

Imports nothing heavy, so every layer may use it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ganforge.errors import ConfigError

__all__ = ["check_bool", "check_int", "check_number", "check_interval", "check_choice"]


def check_bool(key: str, value: Any) -> bool:
    """`value` as a bool; only true and false (Python's or YAML's) are accepted."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def check_int(key: str, value: Any, minimum: int | None = None) -> int:
    """`value` as an int >= `minimum`; bools and floats are refused."""
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        need = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ConfigError(f"{key} must be {need}, got {value!r}")
    return value


def check_number(
    key: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    open_minimum: bool = False,
    open_maximum: bool = False,
) -> float:
    """`value` as a float within [minimum, maximum] (either end open if asked)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok and minimum is not None:
        ok = value > minimum if open_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if open_maximum else value <= maximum
    if not ok:
        if minimum is not None and maximum is not None:
            need = f"a number in {'(' if open_minimum else '['}{minimum}, {maximum}{')' if open_maximum else ']'}"
        elif minimum is not None:
            need = f"a number {'>' if open_minimum else '>='} {minimum}"
        elif maximum is not None:
            need = f"a number {'<' if open_maximum else '<='} {maximum}"
        else:
            need = "a number"
        raise ConfigError(f"{key} must be {need}, got {value!r}")
    return float(value)


def check_interval(key: str, value: Any, example: str, nullable: bool = False) -> tuple[float, float]:
    """`value` as (low, high): two finite numbers with low < high, such as `example`;
    `nullable`: the message says that null is allowed too (the caller handles None)."""
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok or value[0] >= value[1]:
        raise ConfigError(f"{key} must be {'null or ' if nullable else ''}[low, high] with low < high, such as "
                          f"{example}, got {value!r}")
    return float(value[0]), float(value[1])


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value
