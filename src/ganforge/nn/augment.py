"""DiffAugment (Zhao et al., NeurIPS 2020, "Differentiable Augmentation for Data-Efficient
GAN Training"): random transforms of D's inputs, real and fake alike, that gradients pass
through, so G learns through the augmented D.

    augment = DiffAugment("color,translation,cutout")
    d_real = D(augment(real)); d_fake = D(augment(fake))     # (N, C, H, W) -> (N, C, H, W)

The parts, with the paper's reference code's (mit-han-lab/data-efficient-gans,
DiffAugment_pytorch.py) draws, one per sample:

- `color`: brightness x + (u - 0.5); saturation (x - m_c) * 2u + m_c with m_c the mean
  over channels at each pixel; contrast (x - m) * (u + 0.5) + m with m the sample's mean;
  u ~ U[0, 1), in this order.
- `translation`: a shift by whole pixels, t_h, t_w uniform in [-s, s] with
  s = round(ratio * side) (ratio 1/8); pixels from outside the image are 0.
- `cutout`: a rectangle of round(ratio * H) x round(ratio * W) pixels (ratio 1/2) set to 0
  in all channels, centred at a uniform pixel (it may reach past the border).

Randomness comes from `generator` (a torch.Generator) when given, else from torch's
global generator (the training loop re-seeds it before every batch, so a resumed run
draws the same); the same generator state gives the same augmentation. The transforms
are made of additions, products and gathers, so the gradient w.r.t. x is that of the
drawn transform: the identity scaled by the colour factors, moved by the shift, zero in
the cut-out and the padding.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from ganforge.checks import check_number
from ganforge.errors import ConfigError

__all__ = ["augmented", "AUGMENT_PARTS", "AUGMENT_KINDS", "DiffAugment", "make_augment"]

AUGMENT_PARTS = ("color", "translation", "cutout")
AUGMENT_KINDS = ("none", "diffaugment")


def _uniform(shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) of `shape` in x's dtype and device, drawn on the generator's device."""
    device = generator.device if generator is not None else x.device
    return torch.rand(shape, generator=generator, device=device, dtype=torch.float32).to(x.device, x.dtype)


def _integers(low: int, high: int, n: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """n integers uniform in [low, high), int64 on x's device."""
    device = generator.device if generator is not None else x.device
    return torch.randint(low, high, (n,), generator=generator, device=device).to(x.device)


def _parse_policy(policy: str | Iterable[str] | None) -> tuple[str, ...]:
    if policy is None:
        return ()
    parts = policy.split(",") if isinstance(policy, str) else [str(p) for p in policy]
    parts = [p.strip() for p in parts if p.strip()]
    for part in parts:
        if part not in AUGMENT_PARTS:
            raise ConfigError(f"augment.policy has an unknown part {part!r}: choose from {', '.join(AUGMENT_PARTS)} "
                              "(e.g. augment.policy=[color,translation,cutout])")
    return tuple(parts)


class DiffAugment(nn.Module):
    """DiffAugment with `policy` (a comma-separated string or a list of parts, applied in
    that order); `()` or "" is the identity. `(N, C, H, W) -> (N, C, H, W)`."""

    def __init__(self, policy: str | Iterable[str] | None = "color,translation,cutout",
                 translation_ratio: float = 0.125, cutout_ratio: float = 0.5) -> None:
        super().__init__()
        self.policy = _parse_policy(policy)
        self.translation_ratio = check_number("augment.translation_ratio", translation_ratio, 0, 1)
        self.cutout_ratio = check_number("augment.cutout_ratio", cutout_ratio, 0, 1)

    @property
    def enabled(self) -> bool:
        return bool(self.policy)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"DiffAugment takes (N, C, H, W) images, got shape {tuple(x.shape)}")
        for part in self.policy:
            if part == "color":
                x = self.brightness(x, generator)
                x = self.saturation(x, generator)
                x = self.contrast(x, generator)
            elif part == "translation":
                x = self.translation(x, generator)
            else:
                x = self.cutout(x, generator)
        return x

    # ---- the transforms, each drawing its own numbers in this order --------------------

    @staticmethod
    def brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x + (u - 0.5), u ~ U[0, 1) per sample: a shift in [-0.5, 0.5)."""
        return x + (_uniform((x.shape[0], 1, 1, 1), x, generator) - 0.5)

    @staticmethod
    def saturation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(x - mean over channels) * 2u + that mean, u ~ U[0, 1) per sample."""
        mean = x.mean(dim=1, keepdim=True)
        return (x - mean) * (2 * _uniform((x.shape[0], 1, 1, 1), x, generator)) + mean

    @staticmethod
    def contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(x - the sample's mean) * (u + 0.5) + that mean, u ~ U[0, 1) per sample."""
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (_uniform((x.shape[0], 1, 1, 1), x, generator) + 0.5) + mean

    def translation(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """out[n, :, i, j] = x[n, :, i + t_h, j + t_w], 0 where that is outside the image."""
        n, c, h, w = x.shape
        shift_h, shift_w = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        t_h = _integers(-shift_h, shift_h + 1, n, x, generator)
        t_w = _integers(-shift_w, shift_w + 1, n, x, generator)
        rows = torch.arange(h, device=x.device)[None, :] + t_h[:, None]   # (N, H)
        cols = torch.arange(w, device=x.device)[None, :] + t_w[:, None]   # (N, W)
        inside = (((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :])
        out = x.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(n, c, h, w))
        out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(n, c, h, w))
        return out * inside.to(x.dtype)

    def cutout_mask(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(N, 1, H, W): 0 in each sample's cut-out rectangle, 1 elsewhere."""
        n, _, h, w = x.shape
        size_h, size_w = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        # The centre: 0 .. H (H - 1 for an odd size), as the reference draws it.
        centre_h = _integers(0, h + (1 - size_h % 2), n, x, generator)
        centre_w = _integers(0, w + (1 - size_w % 2), n, x, generator)
        top, left = centre_h - size_h // 2, centre_w - size_w // 2
        rows = torch.arange(h, device=x.device)[None, :]
        cols = torch.arange(w, device=x.device)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + size_h)[:, None])   # (N, H)
        in_cols = (cols >= left[:, None]) & (cols < (left + size_w)[:, None])  # (N, W)
        cut = in_rows[:, None, :, None] & in_cols[:, None, None, :]
        return (~cut).to(x.dtype)

    def cutout(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x * self.cutout_mask(x, generator)

    def extra_repr(self) -> str:
        return (f"policy={','.join(self.policy) or 'none'}, translation_ratio={self.translation_ratio}, "
                f"cutout_ratio={self.cutout_ratio}")


def make_augment(kind: str = "none", **options: Any) -> DiffAugment:
    """The augmentation the `augment` config group names: `none` (the identity,
    `enabled` False) or `diffaugment` with its policy and ratios."""
    if kind not in AUGMENT_KINDS:
        raise ConfigError(f"unknown augment {kind!r}: choose one of {', '.join(AUGMENT_KINDS)} "
                          "(e.g. augment=diffaugment)")
    known = {"policy", "translation_ratio", "cutout_ratio"} if kind == "diffaugment" else set()
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"augment={kind} has no option(s) {unknown}"
                          + (f": its options are {', '.join(sorted(known))}" if known else ""))
    return DiffAugment(**options) if kind == "diffaugment" else DiffAugment(policy=())


class _Augmented:
    """D as a training step calls it with DiffAugment: `augment` applied to D's input (the
    first argument), then `discriminator` (the network, or its distributed wrapper)."""

    def __init__(self, discriminator: nn.Module, augment: nn.Module) -> None:
        self.discriminator, self.augment = discriminator, augment

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return self.discriminator(self.augment(x), *args, **kwargs)


def augmented(discriminator: nn.Module, augment: nn.Module) -> _Augmented:
    """`discriminator` called on `augment(x)`: what every D call of a training step goes
    through with augment=diffaugment (so a family's `discriminate` stays as it is)."""
    return _Augmented(discriminator, augment)

