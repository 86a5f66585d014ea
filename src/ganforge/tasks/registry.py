"""The model families: one name per task class, written into every checkpoint.

A family registers itself where it is defined::

    @register_family("pix2pix", trained_by="model=pix2pix or model=pix2pix_small")
    class Pix2PixTask(GANTask): ...

and that is the only place a new family is named. `GANTask.on_save_checkpoint` writes the
name into the checkpoint (``checkpoint["ganforge"]["family"]``); `ganforge.checkpoint`
reads it back to rebuild the right task. Checkpoints written before the registry carry
no name: `guess_family` recognises them by their hyper-parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

__all__ = ["FAMILIES", "Family", "family_of", "guess_family", "register_family"]

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class Family:
    """name: what checkpoints and messages call the family; task_class: its LightningModule;
    trained_by: the model= options that train it, for messages ("resume it with ...")."""

    name: str
    task_class: type
    trained_by: str


FAMILIES: dict[str, Family] = {}


def register_family(name: str, trained_by: str) -> Callable[[T], T]:
    """Class decorator: register the task class under `name` (and set ``cls.family``)."""

    def register(cls: T) -> T:
        known = FAMILIES.get(name)
        if known is not None and known.task_class.__qualname__ != cls.__qualname__:
            raise ValueError(f"model family {name!r} is registered already, by {known.task_class.__qualname__}")
        cls.family = name
        FAMILIES[name] = Family(name, cls, trained_by)
        return cls

    return register


def family_of(task: Any) -> str | None:
    """The registered family name of a task (instance or class), or None."""
    return getattr(task, "family", None)


def guess_family(hyper_parameters: Mapping[str, Any]) -> str | None:
    """The family of a checkpoint written before the registry, from its hyper-parameters:
    only pix2pix and compression existed then."""
    if "quantizer" in hyper_parameters:
        return "compression"
    if "lambda_l1" in hyper_parameters:
        return "pix2pix"
    return None
