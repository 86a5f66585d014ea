"""Soft-to-hard vector quantization (Agustsson et al., "Soft-to-Hard Vector Quantization
for End-to-End Learning Compressible Representations", NeurIPS 2017), scalar case, as
used by generative compression (Agustsson et al., ICCV 2019, sec. 3.2).

For centers c_1 < ... < c_L and temperature T, each element w is mapped to

    hard(w) = c_k,  k = argmin_j |w - c_j|       (a tie goes to the lower center)
    soft(w) = sum_j softmax_j(-|w - c_j| / T) * c_j

and the quantizer's output q(w) has the value of hard(w) and the gradient of soft(w):
the straight-through estimator, with no rounding anywhere in the gradient path.

Neither path builds L copies of w. The nearest center comes from a binary search over
the midpoints between centers. The soft value and its gradients use the fact that, for
w between neighbouring centers c_k <= w < c_k+1, every |w - c_j| is either
(w - c_k) + (c_k - c_j) or (c_k+1 - w) + (c_j - c_k+1): the sums over j become two
exponentials of w times per-interval constants, so the cost per element does not grow
with L and the memory is a few tensors the size of w.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ganforge.checks import check_number
from ganforge.errors import ConfigError

__all__ = ["SoftToHardQuantizer", "soft_assignment_reference"]


def _interval_tables(centers: torch.Tensor, temperature: float) -> dict[str, torch.Tensor]:
    """Per-interval constants for intervals k = 0..L, interval k lying between
    padded centers k-1 and k (padding -inf before and +inf after the sorted centers).

    below[k] = sum_{j<k} exp(-(c_{k-1} - c_j) / T)        (the centers at or below the interval)
    below_c[k] = the same sum with each term times c_j
    above[k] = sum_{j>=k} exp(-(c_j - c_k) / T)          (the centers above the interval)
    above_c[k] = the same with c_j
    Also the padded centers themselves (lower[k] = c_{k-1}, upper[k] = c_k) and, for the
    gradients with respect to the centers, nothing else: those are summed per center.
    """
    count = centers.numel()
    dtype = torch.float64 if centers.dtype == torch.float64 else torch.float32
    c = centers.detach().to(dtype)
    inf = torch.tensor([float("inf")], dtype=dtype, device=c.device)
    lower = torch.cat([-inf, c])
    upper = torch.cat([c, inf])
    below = torch.zeros(count + 1, dtype=dtype, device=c.device)
    below_c = torch.zeros_like(below)
    above = torch.zeros_like(below)
    above_c = torch.zeros_like(below)
    for k in range(1, count + 1):
        weights = torch.exp(-(c[k - 1] - c[:k]) / temperature)
        below[k], below_c[k] = weights.sum(), (weights * c[:k]).sum()
    for k in range(count):
        weights = torch.exp(-(c[k:] - c[k]) / temperature)
        above[k], above_c[k] = weights.sum(), (weights * c[k:]).sum()
    return {"lower": lower, "upper": upper, "below": below, "below_c": below_c, "above": above, "above_c": above_c}


def _soft_parts(w: torch.Tensor, tables: dict[str, torch.Tensor], temperature: float):
    """For each element: interval index, the two scaled exponentials a, b (the larger is 1),
    the normalizer S = a * below + b * above, and soft = (a * below_c + b * above_c) / S."""
    interval = torch.bucketize(w.detach(), tables["upper"][:-1], right=True, out_int32=True)
    x = w.detach().to(tables["lower"].dtype)
    to_lower = x - tables["lower"][interval]  # >= 0, inf in the first interval
    to_upper = tables["upper"][interval] - x  # > 0, inf in the last interval
    nearest = torch.minimum(to_lower, to_upper)
    a = torch.exp((nearest - to_lower) / temperature)
    b = torch.exp((nearest - to_upper) / temperature)
    del to_lower, to_upper, nearest
    normalizer = a * tables["below"][interval] + b * tables["above"][interval]
    soft = (a * tables["below_c"][interval] + b * tables["above_c"][interval]) / normalizer
    return interval, a, b, normalizer, soft


class _SoftToHard(torch.autograd.Function):
    """Forward: hard(w) (or soft(w) if `hard` is False). Backward: the gradient of soft(w)
    with respect to w and, when they require it, to the centers."""

    @staticmethod
    def forward(ctx, w, centers, temperature, hard):
        ctx.temperature = temperature
        ctx.save_for_backward(w, centers)
        if hard:
            midpoints = (centers[1:] + centers[:-1]) / 2
            # right=False: a value exactly on a midpoint goes to the lower center.
            return centers.detach()[torch.bucketize(w.detach(), midpoints.detach(), out_int32=True)].to(w.dtype)
        tables = _interval_tables(centers, temperature)
        return _soft_parts(w, tables, temperature)[-1].to(w.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        w, centers = ctx.saved_tensors
        temperature = ctx.temperature
        tables = _interval_tables(centers, temperature)
        interval, a, b, normalizer, soft = _soft_parts(w, tables, temperature)
        grad_w = grad_c = None
        g = grad_output.to(soft.dtype)
        if ctx.needs_input_grad[0]:
            # d soft / dw = [(-a*below_c + b*above_c) - soft * (-a*below + b*above)] / (T * S)
            numerator = b * (tables["above_c"][interval] - soft * tables["above"][interval])
            numerator -= a * (tables["below_c"][interval] - soft * tables["below"][interval])
            grad_w = (g * numerator / (temperature * normalizer)).to(w.dtype)
            del numerator
        if ctx.needs_input_grad[1]:
            # d soft / d c_j = p_j * (1 + (c_j - soft) * sign(w - c_j) / T), p_j = softmax weight.
            # One pass per center: L is small, and each pass is a few tensors the size of w.
            x = w.detach().to(soft.dtype)
            nearest = torch.minimum(x - tables["lower"][interval], tables["upper"][interval] - x)
            grads = []
            for c in centers.detach().to(soft.dtype):
                p = torch.exp((nearest - (x - c).abs()) / temperature) / normalizer
                grads.append((g * p * (1 + (c - soft) * torch.sign(x - c) / temperature)).sum())
            grad_c = torch.stack(grads).to(centers.dtype)
        return grad_w, grad_c, None, None


def soft_assignment_reference(w: torch.Tensor, centers: torch.Tensor, temperature: float) -> torch.Tensor:
    """The soft assignment written directly from the formula (L stacked distances, a
    softmax, a weighted sum): simple and memory-hungry; tests compare against it."""
    distances = (w.unsqueeze(-1) - centers).abs()
    return (torch.softmax(-distances / temperature, dim=-1) * centers).sum(-1)


class SoftToHardQuantizer(nn.Module):
    """Scalar soft-to-hard quantizer with L sorted centers, for a tensor of any shape.

    ``q(w)``: the value of the nearest center (the straight-through estimator: value of
    `hard`, gradient of `soft`); ``q.soft(w)``: the soft assignment; ``q.indices(w)``: the
    symbols, int64 in [0, L), that an entropy coder codes; ``q.centers``: the sorted
    centers (L,). With ``learnable=True`` the centers are a parameter trained through the
    soft path; they are kept sorted (``centers`` sorts them, and the order is re-imposed
    after each optimizer step by `sort_`).
    """

    def __init__(self, centers: Sequence[float], temperature: float = 1.0, learnable: bool = False) -> None:
        super().__init__()
        values = [float(check_number("quantizer.centers", c)) for c in centers] if _is_sequence(centers) else None
        if values is None:
            raise ConfigError(f"quantizer.centers must be a list of numbers such as [-2, -1, 0, 1, 2], got {centers!r}")
        if len(values) < 2:
            raise ConfigError(f"quantizer.centers needs at least 2 centers, got {values}")
        if len(set(values)) != len(values):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            raise ConfigError(f"quantizer.centers has duplicates {duplicates}: every center must be distinct")
        self.temperature = check_number("quantizer.temperature", temperature, 0, open_minimum=True)
        self.learnable = bool(learnable)
        tensor = torch.tensor(sorted(values), dtype=torch.float32)
        if self.learnable:
            self._centers = nn.Parameter(tensor)
        else:
            self.register_buffer("_centers", tensor)

    @property
    def centers(self) -> torch.Tensor:
        """The sorted centers, (L,)."""
        return torch.sort(self._centers).values if self.learnable else self._centers

    @property
    def num_centers(self) -> int:
        return self._centers.numel()

    @torch.no_grad()
    def sort_(self) -> None:
        """Re-impose the sorted order on the stored centers (after an optimizer step)."""
        self._centers.copy_(torch.sort(self._centers).values)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return _SoftToHard.apply(w, self.centers, self.temperature, True)

    def soft(self, w: torch.Tensor) -> torch.Tensor:
        return _SoftToHard.apply(w, self.centers, self.temperature, False)

    def indices(self, w: torch.Tensor) -> torch.Tensor:
        centers = self.centers.detach()
        return torch.bucketize(w.detach(), (centers[1:] + centers[:-1]) / 2)

    def extra_repr(self) -> str:
        centers = ", ".join(f"{c:g}" for c in self.centers.tolist())
        return f"centers=[{centers}], temperature={self.temperature:g}, learnable={self.learnable}"


def _is_sequence(value) -> bool:
    return isinstance(value, (list, tuple)) or (isinstance(value, torch.Tensor) and value.dim() == 1)
