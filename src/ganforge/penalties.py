"""Discriminator regularizers, each with its weight, usable with any adversarial loss.

    penalty = make_penalty("r1", weight=10, every_n_steps=16)
    value = penalty(critic, real, fake, step, scaler=None)   # weighted, or None when skipped
    if value is not None:
        loss_d = loss_d + value

`critic` maps an image batch `(N, C, H, W)` to D's logits: one tensor (`(N,)` or a patch
map `(N, 1, h, w)`) or a list of them, one per scale of a multiscale discriminator; for a
conditional D, close over the condition. Every penalty here differentiates D's outputs
with respect to its input (a double backward: the graph is kept, so the penalty reaches
D's parameters).

- `none`: nothing (`__call__` returns None).
- `gp`: WGAN-GP (Gulrajani et al. 2017, Algorithm 1): E[(||grad_x D(x_hat)||_2 - 1)^2] at
  x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1] per sample.
- `dragan`: DRAGAN (Kodali et al. 2017): the same (||grad||_2 - 1)^2 at perturbed real
  samples. `variant="compare_gan"` (default) is google/compare_gan's `dragan_penalty`
  (compare_gan/gans/penalty_lib.py, the code of Kurach et al. 2019):
  x_hat = clip(x + std(x) * (u - 0.5)), u ~ U[0, 1] per element, std over the whole
  batch. `variant="interpolated"` is DRAGAN's own recipe as compare_gan's DRAGAN model
  has it (compare_gan/src/gans/DRAGAN.py, Lucic et al. 2018): x_p = x + 0.5 * std(x) * u,
  x_hat = x + alpha * (x_p - x), alpha ~ U[0, 1] per sample, no clipping.
- `r1`: R1 (Mescheder et al. 2018): (gamma / 2) * E[||grad_x D(x_real)||_2^2]; the weight
  is gamma.

`every_n_steps=k` is lazy regularization (Karras et al. 2020, StyleGAN2, section 4.1):
the penalty is computed on D steps 0, k, 2k, ... only, multiplied by k, so that its
average weight stays the same; StyleGAN2 runs R1 with k = 16.

`image_range=(low, high)` is the pixel range in which the input gradient is measured.
ganforge's D sees images in [-1, 1] (the default); compare_gan's (Kurach et al. 2019) sees
[0, 1], and a gradient with respect to those images is 2 / (high - low) times ours, so the
same weight is a different constraint. With image_range=(0, 1) every penalty here measures
the gradient as compare_gan does (gp and dragan: (2 ||g|| - 1)^2, r1: 4 ||g||^2 / 2): a D on
[-1, 1] images then gets the penalty that the same D composed with x -> 2x - 1 would get on
the [0, 1] images (tests/test_penalties.py checks this). The points where the gradient is
taken do not change: interpolation and DRAGAN's std-scaled noise commute with the affine map.

compare_gan takes the norm as sqrt(1e-4 + ||g||^2); here it is ||g|| (as in Gulrajani et
al.'s code), so a linear critic's gp is exactly (||w|| - 1)^2.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence, Union

import torch

from ganforge.checks import check_choice, check_int, check_interval, check_number
from ganforge.errors import ConfigError

__all__ = [
    "PENALTIES",
    "Penalty",
    "NoPenalty",
    "GradientPenalty",
    "DRAGANPenalty",
    "R1Penalty",
    "make_penalty",
    "penalty_for",
    "gradient_penalty",
    "dragan_points",
    "input_gradients",
]

Logits = Union[torch.Tensor, Sequence[torch.Tensor]]
Critic = Callable[[torch.Tensor], Logits]


# --------------------------------------------------------------------------- gradients


def input_gradients(critic: Critic, points: torch.Tensor, scaler: "torch.amp.GradScaler | None" = None) -> torch.Tensor:
    """d(sum of D's outputs)/d(points), `(N, C, H, W)`, with the graph kept.

    `points` must require grad. `scaler` (float16 mixed precision's GradScaler, or None):
    under float16 autocast the gradients through D would underflow, so, as in PyTorch's AMP
    recipe for gradient penalties, D's outputs are multiplied by the loss scale before
    `autograd.grad` and the gradients divided by it. Where the scaled gradients overflow
    (the scaler starts high and learns its scale from overflows), the scale is backed off
    on the scaler itself and the gradients taken again, so that a finite penalty is not
    reported as a diverged loss; if they are not finite even at scale 1, or D's outputs are
    not finite, the gradients are returned as they are (non-finite) and the scale left as
    it was.
    """
    logits = critic(points)
    outputs = [logits] if isinstance(logits, torch.Tensor) else list(logits)
    sums = [o.sum() for o in outputs]
    if scaler is None or not scaler.is_enabled():
        return torch.autograd.grad(sums, points, create_graph=True)[0]
    return _unscaled_gradients(sums, points, scaler)


def _unscaled_gradients(sums: list[torch.Tensor], points: torch.Tensor, scaler: "torch.amp.GradScaler") -> torch.Tensor:
    """d(sum of `sums`)/d(points), taken on outputs multiplied by the scaler's scale."""
    scaled = scaler.scale(sums)  # also creates the scale on its first use
    first_scale = scale = scaler.get_scale()
    outputs_finite = all(bool(torch.isfinite(s)) for s in sums)
    while True:
        grads = torch.autograd.grad(scaled, points, create_graph=True)[0]
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


def _per_sample(shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """U[0, 1] of shape (N, 1, 1, ...), one number per sample, from torch's global generator."""
    return torch.rand(shape[0], *([1] * (len(shape) - 1)), device=like.device, dtype=like.dtype)


def _norm_penalty(grads: torch.Tensor) -> torch.Tensor:
    """E[(||g||_2 - 1)^2] over the batch, the norm over each sample's C, H, W."""
    return (grads.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     scaler: "torch.amp.GradScaler | None" = None, gradient_scale: float = 1.0) -> torch.Tensor:
    """WGAN-GP's E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake,
    eps ~ U[0, 1] per sample (Gulrajani et al. 2017, Algorithm 1), unweighted; a scalar.

    `real`, `fake`: `(N, C, H, W)`, detached here. `scaler`: see `input_gradients`.
    `gradient_scale`: the gradient is multiplied by it first (see `Penalty.image_range`).
    """
    eps = _per_sample(real.shape, real)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    return _norm_penalty(input_gradients(critic, mixed, scaler) * gradient_scale)


def dragan_points(real: torch.Tensor, variant: str = "compare_gan",
                  clip: Sequence[float] | None = (-1.0, 1.0)) -> torch.Tensor:
    """The perturbed real samples where DRAGAN takes D's gradient, `(N, C, H, W)`, detached.

    std is the standard deviation of the whole batch (all elements, population). See the
    module docstring for the two variants. `clip` (compare_gan variant only) bounds the
    points to the data range: compare_gan clips to [0, 1], its images' range; ganforge's D
    sees [-1, 1], hence the default.
    """
    real = real.detach()
    std = real.float().std(correction=0).to(real.dtype)
    noise = torch.rand(real.shape, device=real.device, dtype=real.dtype)
    if variant == "compare_gan":
        points = real + std * (noise - 0.5)
        if clip is not None:
            points = points.clamp(float(clip[0]), float(clip[1]))
        return points
    perturbed = real + 0.5 * std * noise
    alpha = _per_sample(real.shape, real)
    return real + alpha * (perturbed - real)


# --------------------------------------------------------------------------- the penalties


class Penalty:
    """A regularizer of D, with its weight and its schedule.

    `penalty(critic, real, fake, step, scaler=None)` is what the training loop calls on
    each D step: the weighted penalty (a scalar tensor with graph) to add to D's loss, or
    None when this step has none (`kind="none"`, or a lazy step that skips it). `step` is
    the number of D steps taken before this one (0 on the first). `value(...)` is the
    unweighted penalty, computed whatever the step. `image_range`: the pixel range the
    input gradient is measured in (module docstring); `gradient_scale` = 2 / (high - low)
    is what D's gradient is multiplied by.
    """

    kind = "base"

    def __init__(self, weight: float = 0.0, every_n_steps: int = 1,
                 image_range: Sequence[float] = (-1.0, 1.0)) -> None:
        self.weight = check_number("penalty.weight", weight, 0)
        self.every_n_steps = check_int("penalty.every_n_steps", every_n_steps, 1)
        self.image_range = check_interval("penalty.image_range", image_range, "[0, 1] (compare_gan's images) or [-1, 1]")
        self.gradient_scale = 2.0 / (self.image_range[1] - self.image_range[0])

    @property
    def enabled(self) -> bool:
        """Whether the penalty ever adds anything (a D that needs a double backward)."""
        return self.kind != "none" and self.weight > 0

    def applies(self, step: int) -> bool:
        """Whether D step `step` (0-based) carries the penalty: every `every_n_steps`-th."""
        return self.enabled and step % self.every_n_steps == 0

    def value(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor,
              scaler: "torch.amp.GradScaler | None" = None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor, step: int,
                 scaler: "torch.amp.GradScaler | None" = None) -> torch.Tensor | None:
        if not self.applies(int(step)):
            return None
        return (self.weight * self.every_n_steps) * self.value(critic, real, fake, scaler)

    def options(self) -> dict[str, Any]:
        return {"weight": self.weight, "every_n_steps": self.every_n_steps, "image_range": self.image_range}

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({options})"


class NoPenalty(Penalty):
    """No regularizer: `__call__` always returns None."""

    kind = "none"

    def value(self, critic, real, fake, scaler=None) -> torch.Tensor:
        return torch.zeros((), device=real.device)


class GradientPenalty(Penalty):
    """WGAN-GP's penalty (Gulrajani et al. 2017), weight lambda = 10 in the paper."""

    kind = "gp"

    def __init__(self, weight: float = 10.0, every_n_steps: int = 1,
                 image_range: Sequence[float] = (-1.0, 1.0)) -> None:
        super().__init__(weight, every_n_steps, image_range)

    def value(self, critic, real, fake, scaler=None) -> torch.Tensor:
        return gradient_penalty(critic, real, fake, scaler, self.gradient_scale)


class DRAGANPenalty(Penalty):
    """DRAGAN's penalty (Kodali et al. 2017) at perturbed real samples (`dragan_points`);
    weight lambda = 10, compare_gan's default (compare_gan/src/params.py)."""

    kind = "dragan"
    VARIANTS = ("compare_gan", "interpolated")

    def __init__(self, weight: float = 10.0, every_n_steps: int = 1, variant: str = "compare_gan",
                 clip: Sequence[float] | None = (-1.0, 1.0), image_range: Sequence[float] = (-1.0, 1.0)) -> None:
        super().__init__(weight, every_n_steps, image_range)
        self.variant = check_choice("penalty.variant", variant, self.VARIANTS)
        self.clip = None if clip is None else check_interval("penalty.clip", clip, "[-1, 1]", nullable=True)

    def value(self, critic, real, fake, scaler=None) -> torch.Tensor:
        points = dragan_points(real, self.variant, self.clip).requires_grad_(True)
        return _norm_penalty(input_gradients(critic, points, scaler) * self.gradient_scale)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "variant": self.variant, "clip": self.clip}


class R1Penalty(Penalty):
    """R1 (Mescheder et al. 2018): (gamma / 2) * E[||grad_x D(x_real)||^2]; `weight` is
    gamma (10 in the paper's experiments). `value` is E[||grad||^2] / 2, so the weighted
    penalty is gamma / 2 * E[||grad||^2]."""

    kind = "r1"

    def __init__(self, weight: float = 10.0, every_n_steps: int = 1,
                 image_range: Sequence[float] = (-1.0, 1.0)) -> None:
        super().__init__(weight, every_n_steps, image_range)

    def value(self, critic, real, fake, scaler=None) -> torch.Tensor:
        points = real.detach().requires_grad_(True)
        grads = input_gradients(critic, points, scaler) * self.gradient_scale
        return 0.5 * grads.flatten(1).pow(2).sum(1).mean()


PENALTIES = {cls.kind: cls for cls in (NoPenalty, GradientPenalty, DRAGANPenalty, R1Penalty)}


def make_penalty(kind: str = "none", **options: Any) -> Penalty:
    """The regularizer named `kind` (none, gp, dragan, r1) with its options (weight,
    every_n_steps, image_range; dragan: variant, clip): what the `penalty` config group holds."""
    if kind not in PENALTIES:
        raise ConfigError(f"unknown penalty {kind!r}: choose one of {', '.join(PENALTIES)} (e.g. penalty=gp)")
    cls = PENALTIES[kind]
    known = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"penalty={kind} has no option(s) {unknown}: its options are {', '.join(known)}")
    return cls(**options)


def penalty_for(gan_loss: Any, penalty: Any = None) -> Penalty:
    """The penalty a run trains with, given its `gan_loss` (a GANLoss) and `penalty` config
    (a mapping such as {kind: gp, weight: 10}, a Penalty, or None).

    A loss that carries its own penalty weight (`gan_loss.gradient_penalty_weight` > 0:
    the legacy `gan_loss: {kind: wgan_gp, gradient_penalty_weight: w}` of old checkpoints
    and configs) gives `gp` with that weight when no other penalty is chosen; choosing one
    as well is refused (it would penalize twice).
    """
    if isinstance(penalty, Penalty):
        chosen = penalty
    else:
        chosen = make_penalty(**dict(penalty or {"kind": "none"}))
    legacy = float(getattr(gan_loss, "gradient_penalty_weight", 0.0) or 0.0)
    if legacy > 0:
        if chosen.enabled:
            raise ConfigError(f"gan_loss={getattr(gan_loss, 'name', 'wgan_gp')} already adds a gradient penalty "
                              f"(weight {legacy:g}) and penalty={chosen.kind} would add another: use gan_loss=wgan "
                              f"penalty={chosen.kind}")
        return GradientPenalty(weight=legacy)
    return chosen
