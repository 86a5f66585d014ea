import math

import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.losses import GAN_LOSSES, gradient_penalty, make_gan_loss

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.5])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_vanilla_is_binary_cross_entropy_by_hand():
    loss = make_gan_loss("vanilla")
    # -log sigmoid(x) = softplus(-x); -log(1 - sigmoid(x)) = softplus(x)
    d = sum(softplus(-x) for x in REAL.tolist()) / 3 + sum(softplus(x) for x in FAKE.tolist()) / 3
    g = sum(softplus(-x) for x in FAKE.tolist()) / 3
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.generator(FAKE).item() == pytest.approx(g, rel=1e-6)


def test_lsgan_by_hand():
    loss = make_gan_loss("lsgan")
    d = ((1.0**2 + 2.0**2 + 0.5**2) + (9.0 + 0.0 + 2.25)) / 3
    g = (16.0 + 1.0 + 0.25) / 3
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.generator(FAKE).item() == pytest.approx(g, rel=1e-6)


def test_hinge_by_hand():
    loss = make_gan_loss("hinge")
    d = (0 + 2.0 + 0.5) / 3 + (0 + 1.0 + 2.5) / 3
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.generator(FAKE).item() == pytest.approx(-FAKE.mean().item(), rel=1e-6)


def test_wgan_is_the_wasserstein_loss_without_a_penalty():
    loss = make_gan_loss("wgan")
    assert loss.gradient_penalty_weight == 0.0
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(FAKE.mean().item() - REAL.mean().item(), rel=1e-6)
    assert loss.generator(FAKE).item() == pytest.approx(-FAKE.mean().item(), rel=1e-6)
    with pytest.raises(ConfigError, match="gan_loss=wgan takes no option"):
        make_gan_loss("wgan", gradient_penalty_weight=10.0)


def test_wasserstein_by_hand_and_penalty_weight():
    loss = make_gan_loss("wgan_gp")
    assert loss.gradient_penalty_weight == 10.0
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(FAKE.mean().item() - REAL.mean().item(), rel=1e-6)
    assert loss.generator(FAKE).item() == pytest.approx(-FAKE.mean().item(), rel=1e-6)
    assert make_gan_loss("wgan_gp", gradient_penalty_weight=1.0).gradient_penalty_weight == 1.0


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_list_of_scales_is_the_mean_over_scales(kind):
    loss = make_gan_loss(kind)
    a, b = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)
    fa, fb = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)
    expected_d = (loss.discriminator(a, fa) + loss.discriminator(b, fb)) / 2
    torch.testing.assert_close(loss.discriminator([a, b], [fa, fb]), expected_d)
    torch.testing.assert_close(loss.generator([fa, fb]), (loss.generator(fa) + loss.generator(fb)) / 2)


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_the_discriminator_loss_falls_when_real_and_fake_separate(kind):
    loss = make_gan_loss(kind)
    confused = loss.discriminator(torch.zeros(8), torch.zeros(8))
    separated = loss.discriminator(torch.full((8,), 0.9), torch.full((8,), -0.9))
    assert separated < confused
    assert loss.generator(torch.full((8,), 0.9)) < loss.generator(torch.full((8,), -0.9))


def test_gradient_penalty_of_a_linear_critic_is_exact():
    # For D(x) = <w, x>, the input gradient is w everywhere: penalty = (||w|| - 1)^2.
    torch.manual_seed(0)
    critic = nn.Linear(12, 1, bias=False)
    real, fake = torch.randn(5, 12), torch.randn(5, 12)
    norm = critic.weight.norm().item()
    penalty = gradient_penalty(critic, real, fake)
    assert penalty.item() == pytest.approx((norm - 1) ** 2, rel=1e-5)
    penalty.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_unknown_loss_and_option_are_named():
    with pytest.raises(ConfigError, match="unknown gan_loss 'hinj'"):
        make_gan_loss("hinj")
    with pytest.raises(ConfigError, match="takes no option"):
        make_gan_loss("hinge", gradient_penalty_weight=1.0)
    with pytest.raises(ConfigError, match="gradient_penalty_weight must be a number >= 0"):
        make_gan_loss("wgan_gp", gradient_penalty_weight=-1)
