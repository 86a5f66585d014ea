"""Adversarial losses.

Every loss takes discriminator logits as one tensor or a list of tensors (one per scale
of a multiscale discriminator, averaged over the scales) and returns a scalar.
Regularizers of D (gradient penalty, DRAGAN, R1) are in `ganforge.penalties`;
`gradient_penalty` is re-exported here for the callers that import it from this module.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from ganforge.checks import check_number
from ganforge.errors import ConfigError
from ganforge.penalties import gradient_penalty

__all__ = [
    "GAN_LOSSES",
    "GANLoss",
    "VanillaLoss",
    "LSGANLoss",
    "HingeLoss",
    "WassersteinLoss",
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
    `gradient_penalty_weight` > 0 (only the legacy `wgan_gp`) asks the training loop to add
    WGAN-GP's gradient penalty to D's loss (see `ganforge.penalties.penalty_for`).
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


class WassersteinLoss(GANLoss):
    """The Wasserstein loss (Arjovsky et al., ICML 2017) without a penalty:
    D: D(G(z)) - D(x); G: -D(G(z)). D must be kept Lipschitz by other means: a penalty
    (`penalty=gp` is WGAN-GP, Gulrajani et al. 2017) or a normalization (spectral)."""

    name = "wgan"

    def discriminator(self, real: Logits, fake: Logits) -> torch.Tensor:
        return _mean_over_scales(fake, torch.mean) - _mean_over_scales(real, torch.mean)

    def generator(self, fake: Logits) -> torch.Tensor:
        return _mean_over_scales(fake, lambda x: -x.mean())


class WassersteinGPLoss(WassersteinLoss):
    """WGAN-GP (Gulrajani et al., NeurIPS 2017) as one loss: the Wasserstein loss whose
    `gradient_penalty_weight` (lambda, the paper's 10) asks the loop for the gradient
    penalty. Kept for the checkpoints and configs that name it; new configs write
    `gan_loss=wgan penalty=gp` (conf/gan_loss/wgan_gp.yaml is that preset)."""

    name = "wgan_gp"

    def __init__(self, gradient_penalty_weight: float = 10.0) -> None:
        self.gradient_penalty_weight = check_number("gan_loss.gradient_penalty_weight", gradient_penalty_weight, 0)

    def __repr__(self) -> str:
        return f"WassersteinGPLoss(gradient_penalty_weight={self.gradient_penalty_weight})"


GAN_LOSSES = {cls.name: cls for cls in (VanillaLoss, LSGANLoss, HingeLoss, WassersteinLoss, WassersteinGPLoss)}


def make_gan_loss(kind: str, **options: float) -> GANLoss:
    """The adversarial loss named `kind` (vanilla, lsgan, hinge, wgan; wgan_gp = wgan that
    asks for the gradient penalty, kept for old checkpoints)."""
    if kind not in GAN_LOSSES:
        raise ConfigError(f"unknown gan_loss {kind!r}: choose one of {', '.join(GAN_LOSSES)} (e.g. gan_loss=hinge)")
    try:
        return GAN_LOSSES[kind](**options)
    except TypeError:
        raise ConfigError(f"gan_loss={kind} takes no option(s) {sorted(options)}") from None
