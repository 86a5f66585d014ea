"""Command-line overrides as Hydra writes them (`norm=batch`, `+trainer.fast_dev_run=true`,
`~callbacks.sample_grid`, `hydra/launcher=joblib`, `override /norm@model.norm=spectral`):
the one place that takes them apart.

Standard library only: the CLI, the W&B logger, the DDP launcher and the sweep report all
read overrides, and none of them should need Hydra to do it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

__all__ = ["ABOUT_OUTPUT", "about_output", "key", "last_value", "split", "tree", "without_hydra"]

# Overrides that say where a run writes or how it is logged, not what it trains.
ABOUT_OUTPUT = ("paths", "hydra", "logger")


def split(override: str) -> tuple[str, str]:
    """(key, value) of `override`: the key without the +, ++ or ~ in front; a deletion
    without a value (``~callbacks.sample_grid``) has the value ""."""
    text = str(override)
    name, _, value = text.partition("=")
    return name.lstrip("+~"), value


def key(override: str) -> str:
    """The key an override sets (``+trainer.fast_dev_run=true`` -> ``trainer.fast_dev_run``)."""
    return split(override)[0]


def tree(override: str) -> str:
    """The config path of the override's key as dots: a group's ``/`` becomes ``.`` and a
    package (``norm@model.norm``) is left out: ``hydra/launcher=joblib`` -> ``hydra.launcher``."""
    return key(override).split("@", 1)[0].replace("/", ".")


def about_output(override: str) -> bool:
    """Whether the override only says where the run writes or how it is logged (paths.*,
    hydra.*, hydra/..., logger*): not part of what a run trains."""
    first = tree(override).split(".", 1)[0]
    return first in ABOUT_OUTPUT


def without_hydra(overrides: Iterable[str]) -> list[str]:
    """The overrides that are not Hydra's own settings (``hydra.*``, ``hydra/...``)."""
    return [o for o in overrides if tree(o).split(".", 1)[0] != "hydra"]


def last_value(argv: Sequence[str], name: str) -> str | None:
    """The value the last override of `name` in `argv` gives it, or None."""
    values = [split(a)[1] for a in argv if "=" in str(a) and key(a) == name]
    return values[-1] if values else None
