import math

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.nn import SoftToHardQuantizer
from ganforge.nn.quantize import soft_assignment_reference


def by_hand_soft(w: float, centers: list[float], temperature: float) -> float:
    weights = [math.exp(-abs(w - c) / temperature) for c in centers]
    return sum(wt * c for wt, c in zip(weights, centers)) / sum(weights)


def test_values_on_a_hand_worked_example():
    q = SoftToHardQuantizer([-1.0, 0.0, 1.0], temperature=1.0)
    w = torch.tensor([0.2, -0.7, 3.0, 0.5, -0.5])
    # Hard: nearest center; 0.5 and -0.5 are ties and go to the lower center.
    assert q(w).tolist() == [0.0, -1.0, 1.0, 0.0, -1.0]
    assert q.indices(w).tolist() == [1, 0, 2, 1, 0]
    # Soft at 0.2: weights e^-1.2, e^-0.2, e^-0.8 -> (-e^-1.2 + e^-0.8) / (e^-1.2 + e^-0.2 + e^-0.8) = 0.1481 / 1.5692 = 0.0944
    expected = (math.exp(-0.8) - math.exp(-1.2)) / (math.exp(-1.2) + math.exp(-0.2) + math.exp(-0.8))
    assert q.soft(w)[0].item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.0944, abs=1e-4)
    for value, soft in zip(w.tolist(), q.soft(w).tolist()):
        assert soft == pytest.approx(by_hand_soft(value, [-1.0, 0.0, 1.0], 1.0), abs=1e-6)


@pytest.mark.parametrize("temperature", [2.0, 1.0, 0.3, 0.02])
def test_soft_values_and_gradients_equal_the_direct_formula(temperature):
    torch.manual_seed(0)
    centers = torch.tensor([-2.0, -0.5, 0.0, 1.0, 2.5], dtype=torch.float64)
    q = SoftToHardQuantizer(centers.tolist(), temperature=temperature, learnable=True).double()
    w = (torch.randn(500, dtype=torch.float64) * 3).requires_grad_(True)
    grad_out = torch.randn(500, dtype=torch.float64)
    ours = q.soft(w)
    reference_centers = centers.clone().requires_grad_(True)
    reference = soft_assignment_reference(w, reference_centers, temperature)
    torch.testing.assert_close(ours, reference)
    gw, gc = torch.autograd.grad((ours * grad_out).sum(), [w, q._centers])
    rw, rc = torch.autograd.grad((reference * grad_out).sum(), [w, reference_centers])
    torch.testing.assert_close(gw, rw)
    torch.testing.assert_close(gc, rc)


def test_far_values_stay_finite():
    q = SoftToHardQuantizer([-2, -1, 0, 1, 2], temperature=0.01)
    w = torch.tensor([-1e4, -30.0, 1e4, 0.5]).requires_grad_(True)
    q.soft(w).sum().backward()
    assert torch.isfinite(q.soft(w)).all() and torch.isfinite(w.grad).all()
    assert q.soft(w)[:3].tolist() == [-2.0, -2.0, 2.0]


def test_straight_through_gradient_is_the_soft_gradient_and_not_zero():
    torch.manual_seed(1)
    q = SoftToHardQuantizer([-2, -1, 0, 1, 2])
    w = torch.randn(4, 3, 8, 8, requires_grad=True)
    (g_hard,) = torch.autograd.grad(q(w).sum(), w)
    (g_soft,) = torch.autograd.grad(q.soft(w).sum(), w)
    torch.testing.assert_close(g_hard, g_soft)
    # Inside the centers' range every element gets a gradient; beyond the outer centers
    # all distances move together, so the soft assignment is flat there.
    inside = (w > -2) & (w < 2)
    assert (g_hard[inside].abs() > 1e-3).all()


def test_value_is_exactly_a_center_for_any_shape():
    q = SoftToHardQuantizer([-2, -1, 0, 1, 2])
    w = torch.randn(2, 3, 5, 7) * 4
    out = q(w)
    assert out.shape == w.shape
    assert set(out.unique().tolist()) <= {-2.0, -1.0, 0.0, 1.0, 2.0}
    torch.testing.assert_close(out, q.centers[(w.unsqueeze(-1) - q.centers).abs().argmin(-1)])
    assert q.indices(w).dtype == torch.int64


def test_temperature_sharpens_the_soft_assignment_towards_the_hard_one():
    w = torch.linspace(-3, 3, 301)
    hard = SoftToHardQuantizer([-2, -1, 0, 1, 2])(w)
    gaps = [(SoftToHardQuantizer([-2, -1, 0, 1, 2], temperature=t).soft(w) - hard).abs().mean() for t in (2.0, 0.5, 0.05)]
    assert gaps[0] > gaps[1] > gaps[2]


def test_learnable_centers_move_and_stay_sorted():
    torch.manual_seed(0)
    q = SoftToHardQuantizer([-2.0, -1.0, 0.0, 1.0, 2.0], learnable=True)
    optimizer = torch.optim.SGD(q.parameters(), lr=0.5)
    start = q.centers.detach().clone()
    for _ in range(20):
        w = torch.randn(256) * 0.3 + 1.4  # pulls the upper centers together
        optimizer.zero_grad()
        ((q(w) - w) ** 2).mean().backward()
        optimizer.step()
        q.sort_()
    assert not torch.equal(q.centers, start)
    assert torch.all(q.centers[1:] > q.centers[:-1])
    assert torch.equal(q._centers.detach(), q.centers.detach())


def test_centers_are_sorted_whatever_the_order_given():
    assert SoftToHardQuantizer([1, -1, 0]).centers.tolist() == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize("kwargs, words", [
    ({"centers": [0, 1, 1]}, "duplicates [1.0]"),
    ({"centers": [0]}, "at least 2 centers"),
    ({"centers": [-1, 0, 1], "temperature": 0}, "quantizer.temperature must be a number > 0"),
    ({"centers": "l5"}, "quantizer.centers must be a list of numbers"),
])
def test_bad_settings_are_named(kwargs, words):
    with pytest.raises(ConfigError) as error:
        SoftToHardQuantizer(**kwargs)
    assert words in str(error.value)
