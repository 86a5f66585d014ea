"""What a model family's methods pass around: the `Example` a batch becomes, per-network
parts of the shared config, padding to a network's multiple."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError

__all__ = ["Example", "detached", "network_part", "pad_to_multiple"]


@dataclass
class Example:
    """One batch as a model family sees it.

    condition: what the generator is given (and a conditional D sees beside the image),
        or None.
    real: the image the generator should produce, in network units.
    extras: anything else the family needs later (e.g. the quantized latent).
    """

    condition: torch.Tensor | None
    real: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)


def network_part(shared: Any, own: Any) -> Any:
    """One network's norm or act config: its own setting over the shared group's.

    ``own`` None keeps the shared setting; a name (``model.discriminator.norm=spectral``)
    replaces the kind and keeps the shared options; a mapping overrides field by field.
    """
    if own is None:
        return shared
    shared_fields = dict(shared) if isinstance(shared, Mapping) else {"kind": shared}
    if isinstance(own, str):
        return {**shared_fields, "kind": own}
    if isinstance(own, Mapping):
        return {**shared_fields, **own}
    raise ConfigError(f"a per-network norm or act must be a name or a mapping, got {own!r}")


def detached(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, (list, tuple)):
        return type(output)(detached(o) for o in output)
    return output


def pad_to_multiple(batch: Mapping[str, torch.Tensor], multiple: int) -> tuple[dict[str, torch.Tensor], tuple[int, int]]:
    """Pad every image in `batch` on the bottom and right to sides that are multiples of
    `multiple` (mirror padding, or edge replication where the image is too small to
    mirror); returns the padded batch and the original (height, width) to crop back to."""
    first = next(iter(batch.values()))
    height, width = first.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return dict(batch), (height, width)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    padded = {key: F.pad(value, (0, pad_w, 0, pad_h), mode=mode) for key, value in batch.items()}
    return padded, (height, width)
