import pytest
import torch
from torch import nn

from ganforge.models import PatchDiscriminator


def reference_patchgan_parameters(in_ch: int, ndf: int, n_layers: int, norm: str) -> int:
    """Parameter count of the reference NLayerDiscriminator (models/networks.py): the
    first and last 4x4 convs have biases, the others only with instance norm; batch
    norm adds 2 per channel."""
    bias = norm == "instance"
    total = 16 * in_ch * ndf + ndf
    widths = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
    for i in range(1, n_layers + 1):
        total += 16 * widths[i - 1] * widths[i] + (widths[i] if bias else 0) + (2 * widths[i] if norm == "batch" else 0)
    return total + 16 * widths[-1] + 1


def test_70x70_patchgan_has_the_reference_size_and_output():
    model = PatchDiscriminator(6, ndf=64, n_layers=3, norm="batch")
    assert sum(p.numel() for p in model.parameters()) == reference_patchgan_parameters(6, 64, 3, "batch") == 2_768_705
    assert model(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize("n_layers, norm", [(1, "batch"), (2, "instance"), (5, "batch")])
def test_other_depths_follow_the_reference(n_layers, norm):
    model = PatchDiscriminator(3, ndf=16, n_layers=n_layers, norm=norm)
    assert sum(p.numel() for p in model.parameters()) == reference_patchgan_parameters(3, 16, n_layers, norm)


def test_receptive_field_is_70_pixels():
    # A gradient from one output logit reaches exactly a 70x70 window of the input.
    model = PatchDiscriminator(3, ndf=8, n_layers=3, norm="none")
    x = torch.randn(1, 3, 256, 256, requires_grad=True)
    model(x)[0, 0, 15, 15].backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


def test_features_end_with_the_logits_and_spectral_wraps_every_conv():
    model = PatchDiscriminator(3, ndf=8, n_layers=3, norm="spectral").eval()  # eval: no power-iteration update
    x = torch.randn(2, 3, 64, 64)
    features = model.features(x)
    assert len(features) == 5
    torch.testing.assert_close(features[-1], model(x))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(hasattr(c, "parametrizations") for c in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
