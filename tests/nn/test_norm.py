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


def test_layer_norm_is_torchs_layer_norm_over_channels_and_pixels_with_a_per_channel_affine():
    torch.manual_seed(0)
    x = torch.randn(3, 6, 5, 7) * 4 + 2
    layer = make_norm("layer", 6)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2.0)
        layer.bias.uniform_(-1.0, 1.0)
    reference = nn.LayerNorm([6, 5, 7], eps=1e-5, elementwise_affine=False)(x)
    expected = reference * layer.weight.view(1, 6, 1, 1) + layer.bias.view(1, 6, 1, 1)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    # One sample's statistics only: no running state, so eval mode gives the same.
    layer.eval()
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert not list(layer.buffers())


@pytest.mark.parametrize("make_layer", [lambda: nn.Conv2d(4, 6, 3), lambda: nn.ConvTranspose2d(4, 6, 4, 2, 1),
                                        lambda: nn.Linear(10, 3)], ids=["conv", "conv_transpose", "linear"])
def test_weight_norm_is_torchs_weight_norm_per_output_channel(make_layer):
    torch.manual_seed(0)
    layer = NormSpec("weight").wrap(make_layer())
    g, v = layer.parametrizations.weight.original0, layer.parametrizations.weight.original1
    output_dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
    assert g.shape[output_dim] == v.shape[output_dim] and g.numel() == v.shape[output_dim]
    # w = g * v / ||v||, the norm over everything but the output channel (Salimans & Kingma 2016).
    dims = [d for d in range(v.dim()) if d != output_dim]
    torch.testing.assert_close(layer.weight, g * v / torch.linalg.vector_norm(v, dim=dims, keepdim=True))
    reference = nn.utils.parametrizations.weight_norm(make_layer(), dim=output_dim)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(2, 10) if isinstance(layer, nn.Linear) else torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(layer(x), reference(x))


def test_init_of_a_weight_normalized_conv_draws_the_effective_weight_like_a_plain_one():
    from ganforge.nn import init_gan_weights

    torch.manual_seed(0)
    layer = init_gan_weights(NormSpec("weight").wrap(nn.Conv2d(64, 64, 3)))
    assert layer.weight.std().item() == pytest.approx(0.02, rel=0.05)
    torch.testing.assert_close(layer.weight, layer.parametrizations.weight.original1)


def test_paper_kind_means_the_networks_own_norm_with_the_options_given():
    own = NormSpec("spectral", n_power_iterations=1)
    assert NormSpec.from_config("paper", own) == own
    assert NormSpec.from_config({"kind": "paper", "n_power_iterations": 4}, own) == NormSpec("spectral", 4)
    from ganforge.models import MultiScaleDiscriminator, UNetGenerator

    unet = UNetGenerator(1, 2, num_downs=5, ngf=4, norm="paper")
    assert any(isinstance(m, nn.BatchNorm2d) for m in unet.modules())
    multiscale = MultiScaleDiscriminator(3, scales=2, ndf=4, n_layers=2, norm="paper")
    assert any(isinstance(m, nn.InstanceNorm2d) for m in multiscale.modules())
    with pytest.raises(ConfigError, match="unknown norm kind 'paper'"):
        NormSpec("paper")
