"""Adversarial losses.

Every loss takes discriminator logits as one tensor or a list of tensors (one per scale
of a multiscale discriminator, averaged over the scales) and returns a scalar.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from ganforge.checks import check_number
from ganforge.errors import ConfigError

__all__ = [
    "GAN_LOSSES",
    "GANLoss",
    "VanillaLoss",
    "LSGANLoss",
    "HingeLoss",
    "WassersteinGPLoss",
    "make_gan_loss",
    "gradient_penalty",
]

Logits = Union[torch.Tensor, Sequence[torch.Tensor]]


def _mean_over_scales(logits: Logits, per_scale: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    if isinstance(logits, torch.Tensor):
        return per_scale(logits)
    return torch.stack([per_scale(x) for x in logits]).mean()


class GANLoss:
    """The two halves of an adversarial objective.

    `discriminator(real, fake)` is what D minimizes, `generator(fake)` what G minimizes.
    `gradient_penalty_weight` > 0 asks the training loop to add a gradient penalty to D's
    loss (see `gradient_penalty`).
    """

    name = "base"
    gradient_penalty_weight = 0.0

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, fake: Logits) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class VanillaLoss(GANLoss):
    """The original non-saturating GAN loss (Goodfellow et al., NeurIPS 2014), as binary
    cross-entropy on logits: D: -log D(x) - log(1 - D(G(z))); G: -log D(G(z))."""

    name = "vanilla"

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        def bce(x: torch.Tensor, target: float) -> torch.Tensor:
            return F.binary_cross_entropy_with_logits(x, torch.full_like(x, target))

        return _mean_over_scales(real, lambda x: bce(x, 1.0)) + _mean_over_scales(fake, lambda x: bce(x, 0.0))

    def generator(self, fake: Logits) -> torch.Tensor:
        return _mean_over_scales(
            fake, lambda x: F.binary_cross_entropy_with_logits(x, torch.ones_like(x))
        )


class LSGANLoss(GANLoss):
    """Least-squares GAN (Mao et al., ICCV 2017) with targets 1 (real) and 0 (fake):
    D: (D(x) - 1)^2 + D(G(z))^2; G: (D(G(z)) - 1)^2. No 1/2 factor, as in pix2pix."""

    name = "lsgan"

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        return _mean_over_scales(real, lambda x: (x - 1).pow(2).mean()) + _mean_over_scales(
            fake, lambda x: x.pow(2).mean()
        )

    def generator(self, fake: Logits) -> torch.Tensor:
        return _mean_over_scales(fake, lambda x: (x - 1).pow(2).mean())


class HingeLoss(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al., ICLR 2018):
    D: relu(1 - D(x)) + relu(1 + D(G(z))); G: -D(G(z))."""

    name = "hinge"

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        return _mean_over_scales(real, lambda x: F.relu(1 - x).mean()) + _mean_over_scales(
            fake, lambda x: F.relu(1 + x).mean()
        )

    def generator(self, fake: Logits) -> torch.Tensor:
        return _mean_over_scales(fake, lambda x: -x.mean())


class WassersteinGPLoss(GANLoss):
    """WGAN-GP (Gulrajani et al., NeurIPS 2017): D: D(G(z)) - D(x) + lambda * GP;
    G: -D(G(z)). The penalty weight lambda defaults to the paper's 10."""

    name = "wgan_gp"

    def __init__(self, gradient_penalty_weight: float = 10.0) -> None:
        self.gradient_penalty_weight = check_number("gan_loss.gradient_penalty_weight", gradient_penalty_weight, 0)

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        return _mean_over_scales(fake, torch.mean) - _mean_over_scales(real, torch.mean)

    def generator(self, fake: Logits) -> torch.Tensor:
        return _mean_over_scales(fake, lambda x: -x.mean())

    def __repr__(self) -> str:
        return f"WassersteinGPLoss(gradient_penalty_weight={self.gradient_penalty_weight})"


GAN_LOSSES = {cls.name: cls for cls in (VanillaLoss, LSGANLoss, HingeLoss, WassersteinGPLoss)}


def make_gan_loss(kind: str, **options: float) -> GANLoss:
    """The adversarial loss named `kind` (vanilla, lsgan, hinge, wgan_gp)."""
    if kind not in GAN_LOSSES:
        raise ConfigError(f"unknown gan_loss {kind!r}: choose one of {', '.join(GAN_LOSSES)} (e.g. gan_loss=hinge)")
    try:
        return GAN_LOSSES[kind](**options)
    except TypeError:
        raise ConfigError(f"gan_loss={kind} takes no option(s) {sorted(options)}") from None


def gradient_penalty(
    critic: Callable[[torch.Tensor], Logits],
    real: torch.Tensor,
    fake: torch.Tensor,
    scaler: "torch.amp.GradScaler | None" = None,
) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake,
    eps ~ U[0, 1] per sample (Gulrajani et al. 2017, Algorithm 1).

    `critic` maps an image batch to logits; for a conditional D, close over the
    condition. The graph is kept so the penalty can be back-propagated into D.

    `scaler` (float16 mixed precision's GradScaler, or None): under float16 autocast the
    gradients through D would underflow, so, as in PyTorch's AMP recipe for gradient
    penalties, D's outputs are multiplied by the loss scale before `autograd.grad` and the
    gradients divided by it. Where the scaled gradients overflow (the scaler starts high and
    learns its scale from overflows), the scale is backed off on the scaler itself and the
    gradients taken again, so that a finite penalty is not reported as a diverged loss; if
    they are not finite even at scale 1, or D's outputs are not finite, the penalty is
    returned as it is (non-finite) and the scale left as it was.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    logits = critic(mixed)
    outputs = [logits] if isinstance(logits, torch.Tensor) else list(logits)
    sums = [o.sum() for o in outputs]
    if scaler is None or not scaler.is_enabled():
        grads = torch.autograd.grad(sums, mixed, create_graph=True)[0]
    else:
        grads = _unscaled_gradients(sums, mixed, scaler)
    return (grads.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def _unscaled_gradients(sums: list[torch.Tensor], mixed: torch.Tensor, scaler: "torch.amp.GradScaler") -> torch.Tensor:
    """d(sum of `sums`)/d(mixed), taken on outputs multiplied by the scaler's scale."""
    scaled = scaler.scale(sums)  # also creates the scale on its first use
    first_scale = scale = scaler.get_scale()
    outputs_finite = all(bool(torch.isfinite(s)) for s in sums)
    while True:
        grads = torch.autograd.grad(scaled, mixed, create_graph=True)[0]
        if bool(torch.isfinite(grads).all()):
            break
        if not outputs_finite or scale <= 1.0:  # not an overflow of the scaling: leave it to the caller
            if scale != first_scale:
                scaler.update(new_scale=first_scale)
            break
        scale = scale * scaler.get_backoff_factor()
        scaler.update(new_scale=scale)
        scaled = scaler.scale(sums)
    return grads * (1.0 / scale)
