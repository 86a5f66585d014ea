import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models import ResNetDiscriminator, ResNetGenerator
from ganforge.nn import ACT_KINDS, NORM_KINDS


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(k: int, cin: int, cout: int) -> int:
    """A k x k convolution with a bias (chainer's Convolution2D default, as the reference)."""
    return k * k * cin * cout + cout


def table4_generator(num_classes: int | None = None, ch: int = 256) -> int:
    """Miyato et al. 2018, Table 4 (a) and Figure 8 (b): dense z (128) -> 4 x 4 x 256; three
    "ResBlock up 256" = BN, ReLU, up, conv3x3, BN, ReLU, conv3x3, and a 1x1 conv shortcut
    (it upsamples); BN, ReLU, conv3x3 -> 3, tanh. BN: 2 per channel; conditional BN: 2 per
    class and channel; the last BN stays unconditional (as in the reference code)."""
    bn = 2 * ch * (num_classes or 1)
    block = bn + conv(3, ch, ch) + bn + conv(3, ch, ch) + conv(1, ch, ch)
    return 128 * 4 * 4 * ch + 4 * 4 * ch + 3 * block + 2 * ch + conv(3, ch, 3)


def table4_discriminator(num_classes: int | None = None, ch: int = 128) -> int:
    """Table 4 (b) and Figure 8 (c): the optimized "ResBlock down 128" (conv3x3 3 -> 128,
    conv3x3, shortcut 1x1 conv 3 -> 128), "ResBlock down 128" (two conv3x3 and a 1x1
    shortcut: it downsamples), two "ResBlock 128" (two conv3x3 each, identity shortcut),
    ReLU, global sum pooling, dense -> 1 without bias (nobias in the reference); spectral
    norm adds no parameters; the projection adds a num_classes x 128 embedding."""
    optimized = conv(3, 3, ch) + conv(3, ch, ch) + conv(1, 3, ch)
    down = conv(3, ch, ch) + conv(3, ch, ch) + conv(1, ch, ch)
    plain = conv(3, ch, ch) + conv(3, ch, ch)
    return optimized + down + 2 * plain + ch + (num_classes or 0) * ch


def test_paper_sizes_have_the_table_4_parameter_counts():
    assert count(ResNetGenerator()) == table4_generator() == 4_276_739
    assert count(ResNetDiscriminator()) == table4_discriminator() == 1_053_824
    assert count(ResNetGenerator(num_classes=10)) == table4_generator(10) == 4_304_387
    assert count(ResNetDiscriminator(num_classes=10)) == table4_discriminator(10) == 1_055_104
    # Conditioning: G's six block norms get 9 more scale/shift pairs per channel; D a 10 x 128 embedding.
    assert count(ResNetGenerator(num_classes=10)) - count(ResNetGenerator()) == 6 * 2 * 9 * 256
    assert count(ResNetDiscriminator(num_classes=10)) - count(ResNetDiscriminator()) == 10 * 128


def test_paper_size_networks_run():
    torch.manual_seed(0)
    g, d = ResNetGenerator(num_classes=10), ResNetDiscriminator(num_classes=10)
    labels = torch.tensor([3, 7])
    images = g(torch.randn(2, 128), labels)
    assert images.shape == (2, 3, 32, 32) and images.abs().max() <= 1
    assert d(images, labels).shape == (2,)


@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
@pytest.mark.parametrize("norm", NORM_KINDS)
def test_every_norm_gives_the_documented_shapes(norm, conditional):
    torch.manual_seed(0)
    classes = 4 if conditional else None
    g = ResNetGenerator(z_dim=16, channels=8, num_classes=classes, norm=norm)
    d = ResNetDiscriminator(channels=8, num_classes=classes, norm=norm)
    labels = torch.tensor([0, 3, 1]) if conditional else None
    shapes = []
    for block in d.blocks:
        block.register_forward_hook(lambda m, a, out: shapes.append(tuple(out.shape)))
    images = g(torch.randn(3, 16), labels)
    assert images.shape == (3, 3, 32, 32) and images.abs().max() <= 1
    logits = d(images, labels)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    assert shapes == [(3, 8, 16, 16), (3, 8, 8, 8), (3, 8, 8, 8), (3, 8, 8, 8)]


def test_generator_blocks_double_the_side_and_other_sizes_work():
    g = ResNetGenerator(z_dim=8, image_size=48, out_channels=1, channels=8)
    sides = []
    for block in g.blocks:
        block.register_forward_hook(lambda m, a, out: sides.append(out.shape[-1]))
    assert g(torch.randn(2, 8)).shape == (2, 1, 48, 48)
    assert sides == [12, 24, 48]
    assert ResNetDiscriminator(image_size=48, in_channels=1, channels=8)(torch.randn(2, 1, 48, 48)).shape == (2,)


@pytest.mark.parametrize("act", ACT_KINDS)
def test_every_activation_replaces_the_papers(act):
    expected = {"relu": nn.ReLU, "lrelu": nn.LeakyReLU, "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU}[act]
    kinds = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU)
    g, d = ResNetGenerator(z_dim=8, channels=8, act=act), ResNetDiscriminator(channels=8, act=act)
    for net in (g, d):
        assert {type(m) for m in net.modules() if isinstance(m, kinds)} == {expected}
    assert d(g(torch.randn(2, 8))).shape == (2,)


def test_the_generator_block_is_the_references():
    """One up block by hand: BN, ReLU, nearest 2x, conv3x3, BN, ReLU, conv3x3, plus the
    upsampled input through a 1x1 conv (Miyato's gen_models/resblocks.py)."""
    torch.manual_seed(0)
    block = ResNetGenerator(z_dim=4, channels=4).blocks[0].train()
    x = torch.randn(3, 4, 4, 4)

    def bn(h):
        return F.batch_norm(h, None, None, training=True, eps=1e-5)

    up = F.interpolate(x, scale_factor=2, mode="nearest")
    h = F.conv2d(F.interpolate(F.relu(bn(x)), scale_factor=2, mode="nearest"), block.conv1.weight, block.conv1.bias, padding=1)
    h = F.conv2d(F.relu(bn(h)), block.conv2.weight, block.conv2.bias, padding=1)
    expected = h + F.conv2d(up, block.shortcut.weight, block.shortcut.bias)
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


def test_the_discriminator_blocks_are_the_references():
    """By hand from Miyato's dis_models/resblocks.py: the optimized block pools its input
    before the shortcut conv; a down block pools after its second conv and after the
    shortcut conv; a plain block adds its input unchanged."""
    torch.manual_seed(0)
    d = ResNetDiscriminator(image_size=16, channels=4, norm="none").eval()
    optimized, down, plain = d.blocks[0], d.blocks[1], d.blocks[2]
    x = torch.randn(2, 3, 16, 16)
    h = F.conv2d(F.relu(F.conv2d(x, optimized.conv1.weight, optimized.conv1.bias, padding=1)),
                 optimized.conv2.weight, optimized.conv2.bias, padding=1)
    expected = F.avg_pool2d(h, 2) + F.conv2d(F.avg_pool2d(x, 2), optimized.shortcut.weight, optimized.shortcut.bias)
    torch.testing.assert_close(optimized(x), expected, atol=1e-5, rtol=1e-5)

    y = torch.randn(2, 4, 8, 8)
    h = F.conv2d(F.relu(F.conv2d(F.relu(y), down.conv1.weight, down.conv1.bias, padding=1)),
                 down.conv2.weight, down.conv2.bias, padding=1)
    expected = F.avg_pool2d(h, 2) + F.avg_pool2d(F.conv2d(y, down.shortcut.weight, down.shortcut.bias), 2)
    torch.testing.assert_close(down(y), expected, atol=1e-5, rtol=1e-5)

    assert plain.shortcut is None
    h = F.conv2d(F.relu(F.conv2d(F.relu(y), plain.conv1.weight, plain.conv1.bias, padding=1)),
                 plain.conv2.weight, plain.conv2.bias, padding=1)
    torch.testing.assert_close(plain(y), h + y, atol=1e-5, rtol=1e-5)
    # The head: ReLU, sum over pixels, dense without bias.
    features = d.blocks(x)
    torch.testing.assert_close(d(x), F.relu(features).sum(dim=(2, 3)) @ d.head.linear.weight[0], atol=1e-5, rtol=1e-5)


def test_glorot_init_with_gain_sqrt2_on_residual_convs_and_1_elsewhere():
    torch.manual_seed(0)
    g = ResNetGenerator(channels=256, norm="none")

    def bound(layer, gain):
        w = layer.weight
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        return gain * math.sqrt(6 / (fan_in + fan_out))

    block = g.blocks[0]
    for layer, gain in ((block.conv1, math.sqrt(2)), (block.conv2, math.sqrt(2)), (block.shortcut, 1.0),
                        (g.out, 1.0), (g.dense, 1.0)):
        w = layer.weight.detach()
        limit = bound(layer, gain)
        assert w.abs().max() <= limit
        # U(-a, a) has standard deviation a / sqrt(3).
        assert w.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.05)
        assert (layer.bias == 0).all()
    d = ResNetDiscriminator(num_classes=10)
    conv1 = d.blocks[1].conv1.parametrizations.weight.original.detach()
    assert conv1.std().item() == pytest.approx(math.sqrt(2) * math.sqrt(6 / (2 * 9 * 128)) / math.sqrt(3), rel=0.05)


def test_gradients_reach_every_generator_parameter_through_the_discriminator():
    torch.manual_seed(0)
    g = ResNetGenerator(z_dim=16, channels=8, num_classes=3, norm="layer")
    d = ResNetDiscriminator(channels=8, num_classes=3)
    labels = torch.tensor([0, 1, 2, 1])
    d(g(torch.randn(4, 16), labels), labels).mean().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_with_batch_norm_the_biases_it_cancels_get_no_gradient_and_the_rest_learn():
    torch.manual_seed(0)
    g, d = ResNetGenerator(z_dim=16, channels=8, num_classes=3), ResNetDiscriminator(channels=8, num_classes=3)
    labels = torch.tensor([0, 1, 2, 1])
    d(g(torch.randn(4, 16), labels), labels).mean().backward()
    for name, p in g.named_parameters():
        # In G every path from a block conv's bias (per channel, kept as in the reference)
        # meets a batch norm, which subtracts it; the dense bias is per pixel and channel.
        if name.endswith(".bias") and name.startswith("blocks."):
            assert p.grad.abs().max() < 1e-5 * g.get_parameter(name[:-4] + "weight").grad.abs().max(), name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_spectral_norm_by_default_in_d_and_batch_norm_replaces_it():
    d = ResNetDiscriminator(channels=8, num_classes=3)
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert len(layers) == 3 + 3 + 2 + 2 + 2 and all(hasattr(m, "parametrizations") for m in layers)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    batch = ResNetDiscriminator(channels=8, num_classes=3, norm="batch")
    assert not any(hasattr(m, "parametrizations") for m in batch.modules())
    # One norm after the optimized block's first conv (none on the image), two in every other block.
    assert sum(isinstance(m, nn.BatchNorm2d) for m in batch.modules()) == 1 + 3 * 2
    g = ResNetGenerator(z_dim=8, channels=8)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 3 * 2 + 1
    assert not any(hasattr(m, "parametrizations") for m in g.modules())


def test_conditional_generator_has_a_conditional_norm_in_every_block_and_uses_the_labels():
    from ganforge.nn import ConditionalNorm

    g = ResNetGenerator(z_dim=8, channels=8, num_classes=2).eval()
    assert sum(isinstance(m, ConditionalNorm) for m in g.modules()) == 6
    assert isinstance(g.norm, nn.BatchNorm2d)
    with torch.no_grad():
        g.blocks[0].norm1.beta.weight[1].fill_(1.0)
    z = torch.randn(1, 8)
    assert not torch.allclose(g(z, torch.tensor([0])), g(z, torch.tensor([1])))


@pytest.mark.parametrize("make, words", [
    (lambda: ResNetGenerator(image_size=20), "model.generator.image_size must be a multiple of 8"),
    (lambda: ResNetDiscriminator(image_size=12), "model.discriminator.image_size must be an integer >= 16"),
    (lambda: ResNetGenerator(channels=0), "model.generator.channels must be an integer >= 1"),
    (lambda: ResNetGenerator(num_classes=-3), "model.generator.num_classes must be an integer >= 1"),
    (lambda: ResNetDiscriminator(num_classes="10"), "model.discriminator.num_classes must be an integer >= 1"),
    (lambda: ResNetDiscriminator(act="tanh"), "unknown activation 'tanh'"),
])
def test_bad_settings_are_named(make, words):
    with pytest.raises(ConfigError) as error:
        make()
    assert words in str(error.value) and "\n" not in str(error.value)


def test_bad_inputs_are_named():
    g, d = ResNetGenerator(z_dim=8, channels=8), ResNetDiscriminator(channels=8, num_classes=10)
    with pytest.raises(ConfigError, match="is unconditional"):
        g(torch.randn(2, 8), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="is conditional .* needs labels"):
        d(torch.randn(2, 3, 32, 32))
    with pytest.raises(ConfigError, match=r"got labels in \[0, 10\]"):
        d(torch.randn(2, 3, 32, 32), torch.tensor([0, 10]))
    with pytest.raises(ConfigError, match=r"takes \(N, 3, 32, 32\) images, got \(2, 1, 32, 32\)"):
        d(torch.randn(2, 1, 32, 32), torch.tensor([0, 1]))
