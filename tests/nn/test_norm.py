import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.nn import NORM_KINDS, NormSpec, PixelNorm, make_norm, spectral_sigma


def test_pixel_norm_gives_unit_rms_over_channels_at_every_pixel():
    x = torch.randn(4, 32, 8, 8) * 7 + 3
    y = PixelNorm()(x)
    rms = y.pow(2).mean(dim=1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-5, rtol=0)
    # It only rescales each pixel's feature vector: directions are kept.
    cos = nn.functional.cosine_similarity(x, y, dim=1)
    torch.testing.assert_close(cos, torch.ones_like(cos), atol=1e-5, rtol=0)


def test_pixel_norm_eps_keeps_zero_vectors_finite():
    assert torch.isfinite(PixelNorm()(torch.zeros(1, 4, 2, 2))).all()


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: nn.Conv2d(16, 32, 4, 2, 1),
        lambda: nn.ConvTranspose2d(32, 16, 4, 2, 1),
        lambda: nn.Linear(50, 20),
    ],
    ids=["conv", "conv_transpose", "linear"],
)
def test_spectral_norm_makes_largest_singular_value_one(make_layer):
    torch.manual_seed(0)
    layer = NormSpec("spectral", n_power_iterations=1).wrap(make_layer())
    layer.train()
    # The power-iteration vector is a buffer: iterations accumulate over forward passes.
    for _ in range(200):
        weight = layer.weight
    sigma = spectral_sigma(layer)
    assert sigma.item() == pytest.approx(1.0, abs=1e-3)
    # The effective weight is the original one divided by the original's exact sigma.
    original = layer.parametrizations.weight.original.detach()
    matrix = original.transpose(0, 1) if isinstance(layer, nn.ConvTranspose2d) else original
    raw_sigma = torch.linalg.matrix_norm(matrix.reshape(matrix.shape[0], -1), ord=2)
    assert raw_sigma.item() != pytest.approx(1.0, abs=0.05)
    torch.testing.assert_close(weight.detach() * raw_sigma, original, rtol=1e-3, atol=1e-5)


def test_spectral_n_power_iterations_converges_faster_with_more_iterations():
    torch.manual_seed(0)
    errors = []
    for iterations in (1, 10):
        torch.manual_seed(1)
        layer = NormSpec("spectral", n_power_iterations=iterations).wrap(nn.Conv2d(8, 8, 3))
        layer.train()
        _ = layer.weight  # one training forward
        errors.append(abs(spectral_sigma(layer).item() - 1.0))
    assert errors[1] < errors[0]


@pytest.mark.parametrize("kind", NORM_KINDS)
def test_make_norm_keeps_shape(kind):
    layer = make_norm(kind, 8)
    x = torch.randn(2, 8, 5, 5)
    assert layer(x).shape == x.shape


def test_batch_norm_drops_the_conv_bias_and_others_keep_it():
    assert NormSpec("batch").conv_bias is False
    for kind in ("instance", "pixel", "spectral", "none"):
        assert NormSpec(kind).conv_bias is True


def test_spectral_wraps_and_others_do_not():
    conv = nn.Conv2d(3, 3, 3)
    assert NormSpec("batch").wrap(conv) is conv
    wrapped = NormSpec("spectral").wrap(nn.Conv2d(3, 3, 3))
    assert hasattr(wrapped, "parametrizations")


def test_from_config_merges_names_and_mappings():
    shared = NormSpec("spectral", n_power_iterations=3)
    assert NormSpec.from_config("spectral", shared).n_power_iterations == 3
    assert NormSpec.from_config({"kind": "pixel", "eps": 1e-6}).eps == 1e-6
    assert NormSpec.from_config(None) == NormSpec("batch")


@pytest.mark.parametrize(
    "spec, words",
    [
        ("spectal", "unknown norm kind 'spectal'"),
        ({"kind": "spectral", "n_power_iterations": 0}, "n_power_iterations must be an integer >= 1"),
        ({"kind": "pixel", "eps": -1.0}, "norm.eps must be a number > 0"),
        ({"kind": "batch", "momentum": 0.1}, "unknown norm option(s) ['momentum']"),
    ],
)
def test_bad_norm_configs_name_the_problem(spec, words):
    with pytest.raises(ConfigError) as error:
        NormSpec.from_config(spec)
    assert words in str(error.value)
