"""DiffAugment (Zhao et al. 2020): each part's draws against the reference code's
ranges, gradients against finite differences (gradcheck), and the randomness against
the generator that drew it."""

from __future__ import annotations

import itertools

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.nn.augment import AUGMENT_PARTS, DiffAugment, make_augment

POLICIES = ["color", "translation", "cutout", "color,translation,cutout"]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 8, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=seeded(seed)) * 2 - 1


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("shape", [(4, 3, 16, 16), (3, 1, 7, 9)])
def test_shapes_and_dtype_are_kept(policy, shape):
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(shape, dtype=dtype)
        out = DiffAugment(policy)(x, generator=seeded(0))
        assert out.shape == x.shape and out.dtype == dtype


@pytest.mark.parametrize("policy", POLICIES)
def test_the_same_generator_state_gives_the_same_augmentation(policy):
    augment, x = DiffAugment(policy), images()
    first = augment(x, generator=seeded(5))
    torch.testing.assert_close(augment(x, generator=seeded(5)), first, rtol=0, atol=0)
    assert not torch.equal(augment(x, generator=seeded(6)), first)
    # Without a generator: torch's global one, which the training loop re-seeds per batch.
    torch.manual_seed(11)
    global_first = augment(x)
    torch.manual_seed(11)
    torch.testing.assert_close(augment(x), global_first, rtol=0, atol=0)


@pytest.mark.parametrize("policy", POLICIES)
def test_gradients_are_those_of_the_drawn_transform(policy):
    """gradcheck: autograd's Jacobian against finite differences, the draws fixed by the seed."""
    x = images(n=3, c=2, h=8, w=8).double().requires_grad_(True)
    augment = DiffAugment(policy)
    assert torch.autograd.gradcheck(lambda v: augment(v, generator=seeded(2)), (x,), eps=1e-6, atol=1e-6)


def test_brightness_saturation_and_contrast_draw_the_reference_ranges():
    n = 20000
    brightness = DiffAugment.brightness(torch.zeros(n, 1, 1, 1), seeded(0)).flatten()
    assert brightness.min() >= -0.5 and brightness.max() < 0.5  # x + (u - 0.5)
    assert brightness.mean().item() == pytest.approx(0.0, abs=0.01)
    assert brightness.var().item() == pytest.approx(1 / 12, rel=0.03)  # uniform on a unit interval

    x = images(n=n, c=3, h=2, w=2).double()  # float64: the ratios below divide small differences
    mean_c = x.mean(dim=1, keepdim=True)
    factor = ((DiffAugment.saturation(x, seeded(1)) - mean_c) / (x - mean_c)).flatten(1)
    torch.testing.assert_close(factor, factor[:, :1].expand_as(factor), rtol=1e-6, atol=1e-6)  # one per sample
    assert factor.min() >= 0 and factor.max() < 2 and factor[:, 0].mean().item() == pytest.approx(1.0, abs=0.02)

    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    factor = ((DiffAugment.contrast(x, seeded(2)) - mean) / (x - mean)).flatten(1)
    torch.testing.assert_close(factor, factor[:, :1].expand_as(factor), rtol=1e-6, atol=1e-6)
    assert factor.min() >= 0.5 and factor.max() < 1.5 and factor[:, 0].mean().item() == pytest.approx(1.0, abs=0.02)


def shift(x: torch.Tensor, t_h: int, t_w: int) -> torch.Tensor:
    """out[i, j] = x[i + t_h, j + t_w], 0 outside: written with slices, not the module's gathers."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    rows_out = slice(max(0, -t_h), min(h, h - t_h))
    cols_out = slice(max(0, -t_w), min(w, w - t_w))
    rows_in = slice(max(0, t_h), min(h, h + t_h))
    cols_in = slice(max(0, t_w), min(w, w + t_w))
    out[..., rows_out, cols_out] = x[..., rows_in, cols_in]
    return out


def test_translation_shifts_by_up_to_an_eighth_with_zero_padding():
    x = images(n=400, c=2, h=16, w=24) + 2  # no zero pixels: padding is told apart
    out = DiffAugment("translation")(x, generator=seeded(3))
    seen = set()
    for n in range(x.shape[0]):
        # s = round(16 / 8) = 2 rows, round(24 / 8) = 3 columns; exactly one shift explains the sample.
        matches = [(a, b) for a, b in itertools.product(range(-2, 3), range(-3, 4)) if torch.equal(out[n], shift(x[n], a, b))]
        assert len(matches) == 1, n
        seen.add(matches[0])
    assert seen == set(itertools.product(range(-2, 3), range(-3, 4)))  # every shift in range is drawn


def test_cutout_zeroes_a_half_side_rectangle_in_every_channel():
    augment = DiffAugment("cutout")
    x = images(n=500, c=3, h=16, w=12) + 2
    mask = augment.cutout_mask(x, seeded(4))
    torch.testing.assert_close(augment(x, generator=seeded(4)), x * mask)
    zeros = (mask[:, 0] == 0)
    for n in range(x.shape[0]):
        rows, cols = zeros[n].any(1).nonzero().flatten(), zeros[n].any(0).nonzero().flatten()
        # A rectangle: every pixel between its first and last row and column is cut.
        assert zeros[n, rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        assert zeros[n].sum() == len(rows) * len(cols) and len(rows) <= 8 and len(cols) <= 6
    whole = [(zeros[n].any(1).sum().item(), zeros[n].any(0).sum().item()) for n in range(x.shape[0])]
    assert (8, 6) in whole and max(whole) == (8, 6)  # 16 / 2 x 12 / 2 when it lies inside
    assert any(r < 8 for r, _ in whole)  # and clipped where it reaches past the border


def test_translation_and_cutout_gradients_are_their_masks():
    x = images(n=6, h=16, w=16).requires_grad_(True)
    augment = DiffAugment("cutout")
    augment(x, generator=seeded(8)).sum().backward()
    torch.testing.assert_close(x.grad, augment.cutout_mask(x, seeded(8)).expand_as(x))
    x.grad = None
    DiffAugment("translation")(x, generator=seeded(9)).sum().backward()
    # Each input pixel that lands inside the output gets gradient 1, the others 0.
    landed = DiffAugment("translation")(torch.ones_like(x), generator=seeded(9))
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0} and x.grad.sum() == landed.sum()


def test_policies_as_strings_or_lists_and_none_is_the_identity():
    x = images()
    torch.testing.assert_close(DiffAugment(["color", "cutout"])(x, seeded(1)), DiffAugment("color, cutout")(x, seeded(1)))
    identity = make_augment("none")
    assert not identity.enabled and identity(x) is x
    assert DiffAugment("").policy == () and make_augment("diffaugment").policy == AUGMENT_PARTS


@pytest.mark.parametrize("call, words", [
    (lambda: DiffAugment("color,translaton"), "augment.policy has an unknown part 'translaton': choose from color, "
                                              "translation, cutout"),
    (lambda: make_augment("diffaug"), "unknown augment 'diffaug': choose one of none, diffaugment"),
    (lambda: make_augment("diffaugment", ratio=0.5), "augment=diffaugment has no option(s) ['ratio']"),
    (lambda: make_augment("diffaugment", cutout_ratio=2), "augment.cutout_ratio must be a number in [0, 1], got 2"),
])
def test_mistakes_are_one_config_error_line(call, words):
    with pytest.raises(ConfigError) as error:
        call()
    assert words in str(error.value) and len(str(error.value).splitlines()) == 1
