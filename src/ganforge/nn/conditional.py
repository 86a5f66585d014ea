"""Class conditioning for GANs: conditional normalization in the generator and the
projection head of the discriminator.

* `ConditionalNorm`: conditional batch normalization (de Vries et al., "Modulating early
  visual processing by language", NeurIPS 2017; Miyato & Koyama, "cGANs with Projection
  Discriminator", ICLR 2018, sec. 4), for every norm kind of `NormSpec`.
* `ProjectionHead`: the projection discriminator's output (Miyato & Koyama, eq. 3).
* `check_labels`: the one check of the labels a conditional network is given.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.checks import check_int
from ganforge.errors import ConfigError
from ganforge.nn.init import xavier_uniform
from ganforge.nn.norm import NormSpec

__all__ = ["ConditionalNorm", "ProjectionHead", "check_labels", "check_num_classes"]


def check_num_classes(key: str, num_classes: int | None) -> int | None:
    """None (an unconditional network) or an integer >= 1."""
    return None if num_classes is None else check_int(key, num_classes, 1)


def check_labels(labels: torch.Tensor | None, num_classes: int | None, batch: int, name: str) -> None:
    """Refuse, with one line, labels that `name` (a network) cannot use: missing for a
    conditional network, given to an unconditional one, not an integer tensor of shape
    (batch,), or outside [0, num_classes).

    The range check reads one boolean back from the device: an index outside an embedding
    would otherwise end a CUDA run with a device-side assert far from its cause. Inside
    torch.compile (model.compile) it is left out, as it would split the graph at every call;
    the other checks depend only on shapes and stay.
    """
    if num_classes is None:
        if labels is not None:
            raise ConfigError(
                f"{name} is unconditional (num_classes=None) but was given labels: set its num_classes "
                "to the data's number of classes, or leave the labels out"
            )
        return
    if labels is None:
        raise ConfigError(f"{name} is conditional (num_classes={num_classes}) and needs labels (N,) int64, got None")
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype.is_complex \
            or labels.dtype == torch.bool or tuple(labels.shape) != (batch,):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        dtype = f" {labels.dtype}" if isinstance(labels, torch.Tensor) else ""
        raise ConfigError(f"{name} needs labels of shape ({batch},) and an integer dtype, got {shape}{dtype}")
    if torch.compiler.is_compiling():
        return
    if bool(((labels < 0) | (labels >= num_classes)).any()):
        low, high = int(labels.min()), int(labels.max())
        raise ConfigError(
            f"{name} has num_classes={num_classes} but got labels in [{low}, {high}]: labels must lie in "
            f"[0, {num_classes - 1}]; set num_classes to the data's number of classes"
        )


class ConditionalNorm(nn.Module):
    """y = gamma[label] * norm(x) + beta[label], one scale and shift per class and channel.

    norm is `spec`'s layer without its own affine (``spec.layer(channels, affine=False)``):
    batch norm with running statistics, instance, layer (`LayerNorm2d` over C, H, W) or
    pixel norm. The kinds that act on weights rather than as a layer (spectral, weight) and
    none have no such layer, so for them only the per-class affine is applied. gamma starts
    at 1 and beta at 0 (the reference's CategoricalConditionalBatchNormalization), so a new
    ConditionalNorm is the plain norm.

    forward(x (N, C, H, W), labels (N,) int64 in [0, num_classes)) -> (N, C, H, W).
    The labels are not checked here: the network that owns it checks them once
    (`check_labels`).
    """

    def __init__(self, spec: NormSpec, channels: int, num_classes: int) -> None:
        super().__init__()
        check_int("norm channels", channels, 1)
        check_int("num_classes", num_classes, 1)
        self.norm = spec.layer(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    @property
    def num_classes(self) -> int:
        return self.gamma.num_embeddings

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        return self.gamma(labels).view(shape) * self.norm(x) + self.beta(labels).view(shape)


class ProjectionHead(nn.Module):
    """The projection discriminator's logit (Miyato & Koyama, ICLR 2018, eq. 3):

        logit(h, y) = w^T h [+ b] + <V[y], h>

    for features h (N, F) and labels y (N,): a linear layer (psi) plus the inner product of
    h with class y's embedding (the row V[y] of V, num_classes x F). With num_classes None
    it is the linear layer alone (an unconditional discriminator). (N, F) -> (N,).

    norm: the discriminator's NormSpec. Spectral norm reparametrizes both the linear layer
    and the embedding (SNLinear and SNEmbedID in Miyato's code); weight norm only the linear
    layer (a weight-normalized embedding row has no counterpart in the references); other
    kinds leave both plain. The weights start Glorot-uniform (gain 1), bias 0, as in the
    reference.
    """

    def __init__(self, features: int, num_classes: int | None = None, norm: NormSpec | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        check_int("projection features", features, 1)
        self.num_classes = check_num_classes("num_classes", num_classes)
        norm = norm if norm is not None else NormSpec("none")
        self.linear = norm.wrap(xavier_uniform(nn.Linear(features, 1, bias=bias)))
        self.embed = None
        if self.num_classes is not None:
            embed = xavier_uniform(nn.Embedding(self.num_classes, features))
            self.embed = norm.wrap(embed) if norm.kind == "spectral" else embed

    def forward(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        logit = self.linear(h).squeeze(1)
        if self.embed is None:
            if labels is not None:
                raise ConfigError("this projection head is unconditional (num_classes=None) but was given labels")
            return logit
        if labels is None:
            raise ConfigError(f"this projection head is conditional (num_classes={self.num_classes}) and needs labels")
        return logit + (self.embed(labels) * h).sum(dim=1)
