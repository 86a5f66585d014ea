"""The regularizers of D against their formulas, on critics whose input gradient is known
in closed form: a linear critic D(x) = <w, x> + b has grad_x D = w everywhere, a quadratic
one D(x) = a/2 ||x||^2 has grad_x D = a x; a small conv net is checked against finite
differences in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import ganforge.losses
from ganforge.errors import ConfigError
from ganforge.losses import make_gan_loss
from ganforge.penalties import (
    PENALTIES,
    DRAGANPenalty,
    GradientPenalty,
    NoPenalty,
    R1Penalty,
    dragan_points,
    gradient_penalty,
    make_penalty,
    penalty_for,
)

SHAPE = (6, 2, 3, 3)


class Recording:
    """A critic that remembers the points it was called at."""

    def __init__(self, critic):
        self.critic, self.points = critic, []

    def __call__(self, x):
        self.points.append(x.detach().clone())
        return self.critic(x)


def linear_critic(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE[1:]), 1))


def quadratic(a: float):
    return lambda x: 0.5 * a * x.flatten(1).pow(2).sum(1)


def batches(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(SHAPE, generator=generator) * 2 - 1, torch.rand(SHAPE, generator=generator) * 2 - 1


def test_gp_of_a_linear_critic_is_exact_and_its_gradient_reaches_the_weights():
    critic = linear_critic()
    real, fake = batches()
    w = critic[1].weight.detach().flatten()
    norm = w.norm().item()
    value = make_penalty("gp")(critic, real, fake, step=0)
    assert value.item() == pytest.approx(10 * (norm - 1) ** 2, rel=1e-5)
    value.backward()
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||; the bias has no input gradient.
    torch.testing.assert_close(critic[1].weight.grad.flatten(), 20 * (norm - 1) * w / norm, rtol=1e-5, atol=1e-7)
    assert critic[1].bias.grad is None or critic[1].bias.grad.abs().max() == 0


def test_gp_mixes_real_and_fake_with_one_eps_per_sample_and_penalizes_there():
    real, fake = batches()
    critic = Recording(quadratic(3.0))
    value = gradient_penalty(critic, real, fake)
    [points] = critic.points
    eps = ((points - fake) / (real - fake)).flatten(1)  # x_hat = eps real + (1 - eps) fake
    torch.testing.assert_close(eps, eps[:, :1].expand_as(eps), rtol=1e-4, atol=1e-5)
    assert ((eps >= 0) & (eps <= 1)).all() and eps[:, 0].unique().numel() == SHAPE[0]
    norms = 3.0 * points.flatten(1).norm(dim=1)  # grad = a x_hat
    assert value.item() == pytest.approx(((norms - 1) ** 2).mean().item(), rel=1e-5)


def test_the_moved_penalty_is_the_one_losses_exports():
    assert ganforge.losses.gradient_penalty is gradient_penalty


def test_r1_of_a_quadratic_critic_is_gamma_half_the_mean_squared_gradient():
    real, _ = batches()
    fake = torch.full(SHAPE, math.nan)  # R1 looks at real samples only
    a, gamma = 1.5, 4.0
    value = make_penalty("r1", weight=gamma)(quadratic(a), real, fake, step=0)
    expected = gamma / 2 * np.mean(np.sum((a * real.numpy().reshape(SHAPE[0], -1)) ** 2, axis=1))
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_r1_of_a_conv_net_matches_finite_differences_and_trains_its_weights():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3)).double()
    real = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    value = R1Penalty(weight=2.0).value(net, real, real)
    # Central differences of D(x_n) per input element give each sample's gradient.
    step, grads = 1e-6, torch.zeros_like(real)
    with torch.no_grad():
        for index in np.ndindex(*real.shape[1:]):
            bump = torch.zeros_like(real)
            bump[(slice(None), *index)] = step
            grads[(slice(None), *index)] = (net(real + bump) - net(real - bump)).flatten() / (2 * step)
    assert value.item() == pytest.approx(0.5 * grads.flatten(1).pow(2).sum(1).mean().item(), rel=1e-6)
    value.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters() if p.dim() > 1)


def test_lazy_r1_applies_every_kth_step_multiplied_by_k():
    real, fake = batches()
    lazy, every = make_penalty("r1", weight=10.0, every_n_steps=4), make_penalty("r1", weight=10.0)
    values = [lazy(quadratic(1.0), real, fake, step=s) for s in range(10)]
    assert [s for s, v in enumerate(values) if v is not None] == [0, 4, 8]
    once = every(quadratic(1.0), real, fake, step=5)
    for s in (0, 4, 8):
        torch.testing.assert_close(values[s], 4 * once)
    # Over the 12 steps 0..11 the lazy penalty adds what the one on every step adds.
    total = sum(v for v in (lazy(quadratic(1.0), real, fake, step=s) for s in range(12)) if v is not None)
    torch.testing.assert_close(total, 12 * once)


def test_dragan_perturbs_real_samples_by_uniform_noise_of_the_batch_std():
    torch.manual_seed(0)
    real = torch.randn(64, 3, 16, 16) * 0.3  # inside (-1, 1) nearly everywhere: the clip rarely acts
    std = real.std(correction=0).item()
    noise = (dragan_points(real, clip=None) - real).flatten()
    # U[-std/2, std/2): mean 0, variance std^2 / 12, bounded by std / 2.
    assert noise.abs().max().item() <= std / 2 + 1e-6
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01 * std)
    assert noise.var().item() == pytest.approx(std**2 / 12, rel=0.02)
    # compare_gan clips to the data range; [-1, 1] here.
    clipped = dragan_points(torch.full((4, 1, 2, 2), 0.99) + torch.tensor([0.0, 0.0, 0.0, 0.5]).view(4, 1, 1, 1))
    assert clipped.max().item() <= 1.0 and clipped.min().item() >= -1.0


def test_dragan_interpolated_variant_moves_each_sample_towards_x_plus_half_std_noise():
    torch.manual_seed(0)
    real = torch.randn(4000, 1, 2, 2)
    std = real.std(correction=0).item()
    moved = (dragan_points(real, variant="interpolated") - real).flatten(1)
    # alpha * 0.5 * std * u with alpha, u ~ U[0, 1): in [0, std / 2), mean std / 8.
    assert moved.min().item() >= 0 and moved.max().item() < std / 2
    assert moved.mean().item() == pytest.approx(std / 8, rel=0.03)


@pytest.mark.parametrize("variant", DRAGANPenalty.VARIANTS)
def test_dragan_of_a_linear_critic_is_exact(variant):
    critic = linear_critic(seed=2)
    real, fake = batches()
    norm = critic[1].weight.norm().item()
    penalty = make_penalty("dragan", variant=variant)
    assert penalty.weight == 10.0
    value = penalty(critic, real, fake, step=0)
    assert value.item() == pytest.approx(10 * (norm - 1) ** 2, rel=1e-5)
    value.backward()
    assert critic[1].weight.grad.abs().sum() > 0


def test_image_range_0_1_measures_the_gradient_of_a_linear_critic_twice_as_large():
    # D(x) = <w, x> + b on [-1, 1] images is D'(u) = <2w, u> + b' on u = (x + 1) / 2 in [0, 1].
    critic = linear_critic(seed=6)
    real, fake = batches()
    norm = critic[1].weight.norm().item()
    for kind in ("gp", "dragan"):
        value = make_penalty(kind, image_range=[0, 1])(critic, real, fake, step=0)
        assert value.item() == pytest.approx(10 * (2 * norm - 1) ** 2, rel=1e-5), kind
    r1 = make_penalty("r1", weight=3.0, image_range=[0, 1])(critic, real, fake, step=0)
    assert r1.item() == pytest.approx(3.0 / 2 * (2 * norm) ** 2, rel=1e-5)
    assert make_penalty("gp").gradient_scale == 1.0 and make_penalty("r1", image_range=[0, 255]).gradient_scale == 2 / 255


@pytest.mark.parametrize("kind, options", [("gp", {}), ("dragan", {"variant": "compare_gan"}),
                                           ("dragan", {"variant": "interpolated"}), ("r1", {})])
def test_image_range_0_1_is_the_penalty_of_the_same_critic_on_0_1_images(kind, options):
    """compare_gan's setting: D' = D(2u - 1) on images u in [0, 1], penalized there, equals
    D on our [-1, 1] images with image_range [0, 1] (the same random draws)."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3), nn.Flatten()).double()
    real, fake = (x.double() * 0.9 for x in batches(seed=2))
    torch.manual_seed(11)
    ours = make_penalty(kind, image_range=[0, 1], **options)(net, real, fake, step=0)
    theirs_options = {**options, "clip": [0, 1]} if options.get("variant") == "compare_gan" else options
    torch.manual_seed(11)
    theirs = make_penalty(kind, **theirs_options)(lambda u: net(2 * u - 1), (real + 1) / 2, (fake + 1) / 2, step=0)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-9)
    assert ours.item() != pytest.approx(make_penalty(kind, **options)(net, real, fake, step=0).item(), rel=1e-3)


def test_a_critic_with_scales_is_differentiated_through_their_sum():
    first, second = linear_critic(seed=4), linear_critic(seed=5)
    real, fake = batches()
    w = first[1].weight + second[1].weight
    value = gradient_penalty(lambda x: [first(x), second(x)], real, fake)
    assert value.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


@pytest.mark.parametrize("kind", ["gp", "dragan", "r1"])
def test_the_float16_scaler_path_gives_the_unscaled_penalty(kind):
    """The loss scale multiplies D's outputs before autograd.grad and divides the gradients
    (PyTorch's AMP recipe); the penalty is the one without a scaler."""
    real, fake = batches()

    def critic(x):
        return torch.nn.functional.conv2d(x, torch.full((1, 2, 3, 3), 0.1)).tanh().flatten(1).sum(1)

    penalty = make_penalty(kind)
    torch.manual_seed(7)
    plain = penalty(critic, real, fake, step=0)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**20)
    torch.manual_seed(7)
    scaled = penalty(critic, real, fake, step=0, scaler=scaler)
    torch.testing.assert_close(scaled, plain, rtol=1e-6, atol=0)
    assert scaler.get_scale() == 2.0**20


def test_an_overflowing_r1_backs_the_scale_off_like_the_gradient_penalty():
    real, fake = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    critic = lambda x: 4.0 * x.flatten(1).sum(1)  # noqa: E731  gradient 4: overflows at 2**127 and 2**126
    expected = make_penalty("r1")(critic, real, fake, step=0)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    value = make_penalty("r1")(critic, real, fake, step=0, scaler=scaler)
    assert torch.isfinite(value) and scaler.get_scale() == 2.0**125
    torch.testing.assert_close(value, expected)
    assert expected.item() == pytest.approx(10 / 2 * 16 * 48)  # gamma/2 * |4|^2 * 48 inputs


def test_none_adds_nothing_and_says_so():
    penalty = make_penalty("none")
    assert isinstance(penalty, NoPenalty) and not penalty.enabled
    real, fake = batches()
    assert all(penalty(linear_critic(), real, fake, step=s) is None for s in range(3))
    assert not make_penalty("gp", weight=0).enabled and make_penalty("gp", weight=0)(quadratic(1), real, fake, 0) is None


def test_the_config_defaults_are_the_literature_s():
    assert {k: cls().options()["weight"] for k, cls in PENALTIES.items()} == {"none": 0.0, "gp": 10.0, "dragan": 10.0,
                                                                             "r1": 10.0}
    assert all(cls().every_n_steps == 1 for cls in PENALTIES.values())


@pytest.mark.parametrize("call, words", [
    (lambda: make_penalty("gradient"), "unknown penalty 'gradient': choose one of none, gp, dragan, r1"),
    (lambda: make_penalty("gp", gamma=1), "penalty=gp has no option(s) ['gamma']: its options are weight, every_n_steps"),
    (lambda: make_penalty("r1", weight=-1), "penalty.weight must be a number >= 0, got -1"),
    (lambda: make_penalty("r1", every_n_steps=0), "penalty.every_n_steps must be an integer >= 1, got 0"),
    (lambda: make_penalty("dragan", variant="kodali"), "penalty.variant must be one of compare_gan, interpolated"),
    (lambda: make_penalty("dragan", clip=[1, -1]), "penalty.clip must be null or [low, high] with low < high"),
    (lambda: make_penalty("gp", image_range=[1, 0]), "penalty.image_range must be [low, high] with low < high, "
                                                     "such as [0, 1] (compare_gan's images) or [-1, 1], got [1, 0]"),
    (lambda: make_penalty("r1", image_range="0,1"), "penalty.image_range must be [low, high]"),
    (lambda: make_penalty("gp", image_range=[float("nan"), 1]), "penalty.image_range must be [low, high]"),
    (lambda: make_penalty("dragan", clip=[0, float("inf")]), "penalty.clip must be null or [low, high]"),
    (lambda: penalty_for(make_gan_loss("wgan_gp"), {"kind": "dragan"}),
     "gan_loss=wgan_gp already adds a gradient penalty (weight 10) and penalty=dragan would add another"),
])
def test_mistakes_are_one_line_naming_the_key(call, words):
    with pytest.raises(ConfigError) as error:
        call()
    assert words in str(error.value) and len(str(error.value).splitlines()) == 1


def test_the_legacy_wgan_gp_loss_gets_its_gradient_penalty():
    legacy = penalty_for(make_gan_loss("wgan_gp", gradient_penalty_weight=5.0))
    assert isinstance(legacy, GradientPenalty) and legacy.weight == 5.0
    assert isinstance(penalty_for(make_gan_loss("wgan_gp"), {"kind": "none"}), GradientPenalty)
    assert isinstance(penalty_for(make_gan_loss("vanilla")), NoPenalty)
    chosen = penalty_for(make_gan_loss("wgan"), {"kind": "r1", "weight": 1.0, "every_n_steps": 16})
    assert (chosen.kind, chosen.weight, chosen.every_n_steps) == ("r1", 1.0, 16)
