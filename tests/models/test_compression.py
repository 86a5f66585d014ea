import math

import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models import (
    CompressionEncoder,
    CompressionGenerator,
    GenerativeCompression,
    MultiScaleDiscriminator,
    NoiseGenerator,
)
from ganforge.nn import SoftToHardQuantizer


def conv_widths(module: nn.Module) -> list[int]:
    return [m.out_channels for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def test_paper_widths():
    assert conv_widths(CompressionEncoder(8)) == [60, 120, 240, 480, 960, 8]
    generator = conv_widths(CompressionGenerator(8, residual_blocks=9))
    assert generator[0] == 960 and generator[1:19] == [960] * 18 and generator[19:] == [480, 240, 120, 60, 3]
    assert conv_widths(CompressionEncoder(4, width=0.25)) == [15, 30, 60, 120, 240, 4]


@pytest.mark.parametrize("height, width", [(256, 256), (512, 1024), (80, 48)])
def test_shapes_through_the_whole_model(height, width):
    model = GenerativeCompression(4, SoftToHardQuantizer([-2, -1, 0, 1, 2]), width=0.05, residual_blocks=1,
                                  sample_noise=True).eval()
    with torch.no_grad():
        w = model.encode(torch.randn(1, 3, height, width))
        assert w.shape == (1, 4, height // 16, width // 16)
        noise = model.noise((1, height // 16, width // 16))
        assert noise.shape == w.shape
        x_hat, w_bar = model(torch.randn(1, 3, height, width))
    assert x_hat.shape == (1, 3, height, width) and x_hat.abs().max() <= 1
    assert w_bar.shape == w.shape


def test_noise_fits_any_latent_size_and_is_repeatable_with_a_seed():
    noise = NoiseGenerator(2, noise_dim=8, dim=16).eval()
    for shape in [(2, 5, 7), (1, 32, 64), (1, 1, 1)]:
        assert noise(shape).shape == (shape[0], 2, shape[1], shape[2])
    a = noise((1, 6, 9), generator=torch.Generator().manual_seed(3))
    b = noise((1, 6, 9), generator=torch.Generator().manual_seed(3))
    c = noise((1, 6, 9), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_encoder_output_takes_both_signs():
    # The original's ReLU after the last conv left only the non-negative centers in use.
    torch.manual_seed(0)
    w = CompressionEncoder(8, width=0.1)(torch.randn(2, 3, 64, 64))
    assert (w < 0).any() and (w > 0).any()


def test_multiscale_discriminator_shapes_and_features():
    d = MultiScaleDiscriminator(3, scales=3, ndf=8, n_layers=3)
    logits = d(torch.randn(2, 3, 256, 512))
    assert [tuple(x.shape) for x in logits] == [(2, 1, 30, 62), (2, 1, 14, 30), (2, 1, 6, 14)]
    features = d.features(torch.randn(2, 3, 256, 512))
    assert len(features) == 3 and all(len(f) == 5 for f in features)
    x = torch.randn(1, 3, 128, 128)
    torch.testing.assert_close(d.eval().features(x)[0][-1], d.discriminators[0](x))


def test_multiscale_discriminator_names_the_smallest_side():
    d = MultiScaleDiscriminator(3, scales=3, ndf=4, n_layers=3)
    with pytest.raises(ConfigError, match="needs image sides of at least 96"):
        d(torch.randn(1, 3, 64, 64))


def test_one_generator_step_reaches_every_encoder_parameter():
    torch.manual_seed(0)
    model = GenerativeCompression(4, SoftToHardQuantizer([-2, -1, 0, 1, 2]), width=0.1, residual_blocks=2)
    d = MultiScaleDiscriminator(3, scales=2, ndf=4, n_layers=2)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    x_hat, _ = model(x)
    loss = sum((logits - 1).pow(2).mean() for logits in d(x_hat)) + 12 * (x_hat - x).pow(2).mean()
    loss.backward()
    for name, parameter in model.encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_bpp_bound_follows_c_and_l():
    for centers, c in (([-1, 0, 1], 2), ([-2, -1, 0, 1, 2], 8), ([-3, -2, -1, 0, 1, 2, 3], 16)):
        model = GenerativeCompression(c, SoftToHardQuantizer(centers), width=0.05, residual_blocks=0)
        assert model.bpp_bound == pytest.approx(c * math.log2(len(centers)) / 256)
