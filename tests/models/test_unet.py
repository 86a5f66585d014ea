import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models import UNetGenerator


def reference_unet_parameters(in_ch: int, out_ch: int, num_downs: int, ngf: int, norm: str) -> int:
    """Parameter count of junyanz/pytorch-CycleGAN-and-pix2pix's UnetGenerator
    (models/networks.py), derived from its layer list: every 4x4 (transposed) conv has
    a bias only when the norm is instance (use_bias), except the outermost up conv,
    which always has one; batch norm adds 2 parameters per channel, instance norm none
    (affine=False); the innermost block has no norm after its down conv."""
    bias = norm == "instance"

    def conv(cin, cout, has_bias=bias):
        return 16 * cin * cout + (cout if has_bias else 0)

    def norm_params(c):
        return 2 * c if norm == "batch" else 0

    total = conv(in_ch, ngf) + conv(2 * ngf, out_ch, True)  # outermost block
    levels = [(ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf)] + [(8 * ngf, 8 * ngf)] * (num_downs - 5)
    for outer, inner in levels:
        total += conv(outer, inner) + norm_params(inner) + conv(2 * inner, outer) + norm_params(outer)
    total += conv(8 * ngf, 8 * ngf) + conv(8 * ngf, 8 * ngf) + norm_params(8 * ngf)  # innermost
    return total


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_unet_256_parameter_count_equals_the_reference():
    assert count(UNetGenerator(3, 3, num_downs=8, ngf=64, norm="batch")) == 54_413_955
    assert reference_unet_parameters(3, 3, 8, 64, "batch") == 54_413_955


@pytest.mark.parametrize("in_ch, out_ch, num_downs, ngf, norm", [
    (1, 2, 8, 64, "batch"), (3, 3, 7, 64, "batch"), (3, 3, 8, 64, "instance"), (1, 2, 6, 32, "batch"),
])
def test_parameter_count_follows_the_reference_for_other_settings(in_ch, out_ch, num_downs, ngf, norm):
    model = UNetGenerator(in_ch, out_ch, num_downs=num_downs, ngf=ngf, norm=norm)
    assert count(model) == reference_unet_parameters(in_ch, out_ch, num_downs, ngf, norm)


def test_every_level_has_the_documented_shape():
    model = UNetGenerator(3, 3, num_downs=8, ngf=8)
    shapes = {}
    for name, blocks in (("down", model.down), ("up", model.up)):
        for i, block in enumerate(blocks):
            block.register_forward_hook(lambda m, a, out, key=(name, i): shapes.__setitem__(key, tuple(out.shape)))
    out = model(torch.randn(2, 3, 256, 256))
    assert out.shape == (2, 3, 256, 256)
    widths = [8 * min(2**i, 8) for i in range(8)]
    for i in range(8):
        side = 256 // 2 ** (i + 1)
        assert shapes[("down", i)] == (2, widths[i], side, side)
        expected_up_channels = 3 if i == 0 else widths[i - 1]
        assert shapes[("up", i)] == (2, expected_up_channels, 2 * side, 2 * side)
    assert shapes[("down", 7)][-2:] == (1, 1)


def test_output_is_tanh_bounded_and_dropout_sits_in_the_three_inner_decoder_levels():
    model = UNetGenerator(1, 2, num_downs=8, ngf=4)
    out = model(torch.randn(1, 1, 256, 256) * 100)
    assert out.abs().max() <= 1
    with_dropout = [i for i, block in enumerate(model.up) if any(isinstance(m, nn.Dropout) for m in block)]
    assert with_dropout == [4, 5, 6]


def test_gradients_reach_every_parameter():
    model = UNetGenerator(3, 3, num_downs=5, ngf=4, norm="instance", act="elu")
    model(torch.randn(2, 3, 32, 32)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("norm", ["batch", "instance", "pixel", "spectral", "none"])
def test_every_norm_builds_and_runs(norm):
    model = UNetGenerator(3, 3, num_downs=5, ngf=4, norm=norm)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_activation_switch_replaces_both_paths():
    model = UNetGenerator(3, 3, num_downs=5, ngf=4, act="elu")
    kinds = {type(m) for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.ELU))}
    assert kinds == {nn.ELU}
    paper = UNetGenerator(3, 3, num_downs=5, ngf=4)
    assert {type(m) for m in paper.down.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))} == {nn.LeakyReLU}
    assert {type(m) for m in paper.up.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))} == {nn.ReLU}


def test_a_side_that_is_not_a_multiple_is_refused_with_the_fix():
    model = UNetGenerator(3, 3, num_downs=6, ngf=4)
    with pytest.raises(ConfigError, match="multiples of 64"):
        model(torch.randn(1, 3, 96, 96))


@pytest.mark.parametrize("kwargs, words", [
    ({"ngf": 0}, "model.generator.ngf must be an integer >= 1"),
    ({"num_downs": 1.5}, "model.generator.num_downs must be an integer"),
    ({"dropout": 1.0}, "model.generator.dropout must be a number in [0, 1)"),
])
def test_bad_settings_are_named(kwargs, words):
    with pytest.raises(ConfigError) as error:
        UNetGenerator(**kwargs)
    assert words in str(error.value)
