import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models import DCGANDiscriminator, DCGANGenerator
from ganforge.nn import ACT_KINDS, NORM_KINDS


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(k: int, cin: int, cout: int) -> int:
    """A k x k convolution (or deconvolution) with a bias, as in the reference code."""
    return k * k * cin * cout + cout


def table3_generator(num_classes: int | None = None, side: int = 32) -> int:
    """Miyato et al. 2018, Table 3 (a), M_g = side / 8: dense -> M_g x M_g x 512, then 4x4
    stride-2 deconvs to 256, 128, 64 each with BN and ReLU, then a 3x3 conv to 3.

    The table lists no norm after the dense layer; the reference code (chainer-gan-lib's
    bn0, compare_gan's g_bn1) has BN + ReLU there: counted here per channel (2 x 512), as
    ganforge normalizes the 512-channel map. A BN has 2 parameters per channel; a
    conditional one 2 per class and channel instead."""
    m = side // 8
    per_channel = 2 * (num_classes or 1)
    dense = 128 * (m * m * 512) + m * m * 512
    norms = per_channel * (512 + 256 + 128 + 64)
    deconvs = conv(4, 512, 256) + conv(4, 256, 128) + conv(4, 128, 64)
    return dense + norms + deconvs + conv(3, 64, 3)


def table3_discriminator(num_classes: int | None = None, side: int = 32) -> int:
    """Table 3 (b): conv3x3 64, conv4x4 64, conv3x3 128, conv4x4 128, conv3x3 256,
    conv4x4 256, conv3x3 512 (spectral norm adds no parameters), dense (with bias) on the
    flattened (M/8)^2 x 512 map -> 1; the projection adds a num_classes x features embedding."""
    features = (side // 8) ** 2 * 512
    convs = (conv(3, 3, 64) + conv(4, 64, 64) + conv(3, 64, 128) + conv(4, 128, 128) + conv(3, 128, 256)
             + conv(4, 256, 256) + conv(3, 256, 512))
    return convs + features + 1 + (num_classes or 0) * features


def test_paper_sizes_have_the_table_3_parameter_counts():
    assert count(DCGANGenerator()) == table3_generator() == 3_813_379
    assert count(DCGANDiscriminator()) == table3_discriminator() == 2_935_873
    assert count(DCGANGenerator(num_classes=10)) == table3_generator(10) == 3_830_659
    assert count(DCGANDiscriminator(num_classes=10)) == table3_discriminator(10) == 3_017_793
    # Conditioning adds 18 scale/shift pairs per channel of G's four norms and a 10 x 8192 embedding to D.
    assert count(DCGANGenerator(num_classes=10)) - count(DCGANGenerator()) == 2 * 9 * (512 + 256 + 128 + 64)
    assert count(DCGANDiscriminator(num_classes=10)) - count(DCGANDiscriminator()) == 10 * 4 * 4 * 512
    assert count(DCGANGenerator(image_size=64)) == table3_generator(side=64)
    assert count(DCGANDiscriminator(image_size=64, num_classes=10)) == table3_discriminator(10, side=64)


def test_paper_size_networks_run_at_32():
    torch.manual_seed(0)
    g, d = DCGANGenerator(), DCGANDiscriminator()
    images = g(torch.randn(2, 128))
    assert images.shape == (2, 3, 32, 32) and images.abs().max() <= 1
    assert d(images).shape == (2,)


@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("norm", NORM_KINDS)
def test_every_norm_gives_the_documented_shapes(norm, size, conditional):
    torch.manual_seed(0)
    classes = 5 if conditional else None
    g = DCGANGenerator(z_dim=16, image_size=size, out_channels=3, base_channels=32, num_classes=classes, norm=norm)
    d = DCGANDiscriminator(image_size=size, in_channels=3, base_channels=4, num_classes=classes, norm=norm)
    labels = torch.tensor([0, 4, 2]) if conditional else None
    images = g(torch.randn(3, 16), labels)
    assert images.shape == (3, 3, size, size) and images.abs().max() <= 1
    logits = d(images, labels)
    assert logits.shape == (3,) and torch.isfinite(logits).all()


def test_grey_images_and_other_multiples_of_8():
    g = DCGANGenerator(z_dim=8, image_size=48, out_channels=1, base_channels=16)
    d = DCGANDiscriminator(image_size=48, in_channels=1, base_channels=2)
    assert d(g(torch.randn(2, 8))).shape == (2,)
    assert g(torch.randn(2, 8)).shape == (2, 1, 48, 48)


@pytest.mark.parametrize("act", ACT_KINDS)
def test_every_activation_replaces_the_papers(act):
    g = DCGANGenerator(z_dim=8, base_channels=16, act=act)
    d = DCGANDiscriminator(base_channels=2, act=act)
    kinds = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU)
    expected = {"relu": nn.ReLU, "lrelu": nn.LeakyReLU, "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU}[act]
    for net in (g, d):
        assert {type(m) for m in net.modules() if isinstance(m, kinds)} == {expected}
    assert d(g(torch.randn(2, 8))).shape == (2,)


def test_paper_activations_are_relu_in_g_and_leaky_relu_0_1_in_d():
    g, d = DCGANGenerator(z_dim=8, base_channels=16), DCGANDiscriminator(base_channels=2)
    assert sum(isinstance(m, nn.ReLU) for m in g.modules()) == 4
    slopes = [m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.1] * 7
    assert {m.negative_slope for m in DCGANDiscriminator(base_channels=2, act="lrelu").modules()
            if isinstance(m, nn.LeakyReLU)} == {0.1}


def test_gradients_reach_every_generator_parameter_through_the_discriminator():
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=16, base_channels=32, num_classes=4, norm="none")
    d = DCGANDiscriminator(base_channels=4, num_classes=4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])  # every class, so every embedding row is used
    d(g(torch.randn(6, 16), labels), labels).mean().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_with_batch_norm_only_the_biases_it_cancels_get_no_gradient():
    torch.manual_seed(0)
    g, d = DCGANGenerator(z_dim=16, base_channels=32, num_classes=3), DCGANDiscriminator(base_channels=4, num_classes=3)
    labels = torch.tensor([0, 1, 2, 2])
    d(g(torch.randn(4, 16), labels), labels).mean().backward()
    # The deconvs' per-channel biases feed batch norm, which subtracts them again (kept for
    # the reference's parameter count); every other parameter learns. (The dense bias is
    # one per feature of the (512, 4, 4) map, so a per-channel norm keeps its spatial part.)
    cancelled = {"deconvs.0.bias", "deconvs.1.bias", "deconvs.2.bias"}
    for name, p in g.named_parameters():
        if name in cancelled:
            assert p.grad.abs().max() < 1e-6 * g.get_parameter(name.replace("bias", "weight")).grad.abs().max(), name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_spectral_norm_by_default_in_d_and_batch_norm_replaces_it():
    d = DCGANDiscriminator(base_channels=4, num_classes=3)
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert len(layers) == 9 and all(hasattr(m, "parametrizations") for m in layers)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    batch = DCGANDiscriminator(base_channels=4, num_classes=3, norm="batch")
    assert not any(hasattr(m, "parametrizations") for m in batch.modules())
    # A norm after every conv but the first (no norm at the input layer).
    assert [m.num_features for m in batch.modules() if isinstance(m, nn.BatchNorm2d)] == [4, 8, 8, 16, 16, 32]
    # G has batch norm and no spectral norm by default.
    g = DCGANGenerator(z_dim=8, base_channels=16)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 4
    assert not any(hasattr(m, "parametrizations") for m in g.modules())


def test_conditional_generator_uses_the_labels():
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=8, base_channels=16, num_classes=2).eval()
    with torch.no_grad():
        for m in g.modules():
            if hasattr(m, "gamma"):
                m.beta.weight[1].fill_(1.0)  # class 1 shifted, class 0 not
    z = torch.randn(1, 8)
    assert not torch.allclose(g(z, torch.tensor([0])), g(z, torch.tensor([1])))


@pytest.mark.parametrize("make, words", [
    (lambda: DCGANGenerator(image_size=36), "model.generator.image_size must be a multiple of 8"),
    (lambda: DCGANGenerator(image_size=8), "model.generator.image_size must be an integer >= 16"),
    (lambda: DCGANDiscriminator(image_size=30), "model.discriminator.image_size must be a multiple of 8"),
    (lambda: DCGANGenerator(base_channels=100), "model.generator.base_channels must be a multiple of 8"),
    (lambda: DCGANGenerator(num_classes=0), "model.generator.num_classes must be an integer >= 1"),
    (lambda: DCGANDiscriminator(num_classes=2.5), "model.discriminator.num_classes must be an integer >= 1"),
    (lambda: DCGANDiscriminator(norm="batchnorm"), "unknown norm kind 'batchnorm'"),
])
def test_bad_settings_are_named(make, words):
    with pytest.raises(ConfigError) as error:
        make()
    assert words in str(error.value) and "\n" not in str(error.value)


def test_bad_inputs_are_named():
    g = DCGANGenerator(z_dim=8, base_channels=16, num_classes=3)
    d = DCGANDiscriminator(base_channels=2)
    with pytest.raises(ConfigError, match="is conditional .* needs labels"):
        g(torch.randn(2, 8))
    with pytest.raises(ConfigError, match=r"labels must lie in \[0, 2\]"):
        g(torch.randn(2, 8), torch.tensor([0, 3]))
    with pytest.raises(ConfigError, match="is unconditional"):
        d(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match=r"takes z of shape \(N, 8\)"):
        g(torch.randn(2, 9), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match=r"takes \(N, 3, 32, 32\) images, got \(2, 3, 64, 64\)"):
        d(torch.randn(2, 3, 64, 64))


def test_the_compare_gan_layout_has_the_public_codes_widths():
    # compare_gan's SNDCGAN D (the code of Kurach et al. 2019): 3x3 64, 4x4 s2 128, 3x3 128,
    # 4x4 s2 256, 3x3 256, 4x4 s2 512, 3x3 512, dense; every layer with a bias.
    from ganforge.models import DCGANDiscriminator

    convs = [(3, 64, 3), (64, 128, 4), (128, 128, 3), (128, 256, 4), (256, 256, 3), (256, 512, 4), (512, 512, 3)]
    expected = sum(k * k * a * b + b for a, b, k in convs) + 512 * 4 * 4 + 1
    assert expected == 5_860_865
    d = DCGANDiscriminator(layout="compare_gan")
    assert sum(p.numel() for p in d.parameters()) == expected
    assert d(torch.randn(2, 3, 32, 32)).shape == (2,)
