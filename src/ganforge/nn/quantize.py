"""Soft-to-hard vector quantization (Agustsson et al., "Soft-to-Hard Vector Quantization
for End-to-End Learning Compressible Representations", NeurIPS 2017), scalar case, as
used by generative compression (Agustsson et al., ICCV 2019, sec. 3.2).

For centers c_1 < ... < c_L and temperature T, each element w is mapped to

    hard(w) = c_k,  k = argmin_j |w - c_j|       (a tie goes to the lower center)
    soft(w) = sum_j softmax_j(-|w - c_j| / T) * c_j

and the quantizer's output q(w) has the value of hard(w) and the gradient of soft(w):
the straight-through estimator, with no rounding anywhere in the gradient path.

Neither path builds L copies of w. The nearest center comes from counting the
midpoints between centers that lie below w. The soft value and its gradients use the fact that, for
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


# Elements are processed in chunks of this many, so the temporaries stay small (and in
# cache) whatever the size of w.
CHUNK = 1 << 16


def _interval_tables(centers: torch.Tensor, temperature: float, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Per-interval constants for the L + 1 intervals between the sorted centers, interval
    k lying between c_{k-1} and c_k (c_{-1} = -inf, c_L = +inf).

    For w in interval k let d = w - c_{k-1} and e = c_k - w, t = d - e = 2w - (c_{k-1} + c_k),
    and scale by the nearest distance min(d, e), so a = exp(-relu(t) / T) and
    b = exp(-relu(-t) / T), one of which is 1. Then with
        below[k]   = sum_{j<k}  exp(-(c_{k-1} - c_j) / T),   below_c[k] = the same with c_j *
        above[k]   = sum_{j>=k} exp(-(c_j - c_k) / T),       above_c[k] = the same with c_j *
    the soft assignment is soft = (a below_c + b above_c) / S with S = a below + b above, and
    d soft / dw = exp(-|t| / T) * slope[k] / S^2, slope[k] = 2 (above_c below - below_c above) / T.
    Computed in float64, returned in `dtype`.
    """
    c = centers.detach().to(torch.float64)
    count = c.numel()
    inf = torch.tensor([float("inf")], dtype=torch.float64, device=c.device)
    below = torch.zeros(count + 1, dtype=torch.float64, device=c.device)
    below_c, above, above_c = torch.zeros_like(below), torch.zeros_like(below), torch.zeros_like(below)
    for k in range(1, count + 1):
        weights = torch.exp(-(c[k - 1] - c[:k]) / temperature)
        below[k], below_c[k] = weights.sum(), (weights * c[:k]).sum()
    for k in range(count):
        weights = torch.exp(-(c[k:] - c[k]) / temperature)
        above[k], above_c[k] = weights.sum(), (weights * c[k:]).sum()
    tables = {
        "ends": torch.cat([-inf, c]) + torch.cat([c, inf]),  # c_{k-1} + c_k
        "below": below,
        "below_c": below_c,
        "above": above,
        "above_c": above_c,
        "slope": 2 * (above_c * below - below_c * above) / temperature,
        "upper": c,  # an element's interval is how many centers lie at or below it
    }
    return {name: table.to(dtype) for name, table in tables.items()}


def _rank(x: torch.Tensor, edges: Sequence[float], inclusive: bool) -> torch.Tensor:
    """How many of the sorted `edges` lie below each element (at or below if `inclusive`),
    as int32. L comparisons: for a handful of centers this beats a binary search
    (torch.bucketize) several times over on a CPU."""
    compare = torch.ge if inclusive else torch.gt
    rank = compare(x, edges[0]).to(torch.int32)
    for edge in edges[1:]:
        rank += compare(x, edge)
    return rank


def _soft_chunk(x: torch.Tensor, tables: dict[str, torch.Tensor], temperature: float):
    """For a 1-D chunk: interval index, the scaled weights a, b, the normalizer S, and soft."""
    interval = _rank(x, tables["upper"].tolist(), inclusive=True)

    def take(name: str) -> torch.Tensor:
        return tables[name].index_select(0, interval)

    t = take("ends").neg_().add_(x, alpha=2.0)
    a = t.clamp_min(0).div_(-temperature).exp_()
    b = t.clamp_max_(0).div_(temperature).exp_()  # t is spent from here on
    normalizer = take("below").mul_(a).add_(take("above").mul_(b))
    soft = take("below_c").mul_(a).add_(take("above_c").mul_(b)).div_(normalizer)
    return interval, a, b, normalizer, soft


def _chunks(n: int):
    for start in range(0, n, CHUNK):
        yield slice(start, min(start + CHUNK, n))


class _SoftToHard(torch.autograd.Function):
    """Forward: hard(w) (or soft(w) if `hard` is False). Backward: the gradient of soft(w)
    with respect to w and, when they require it, to the centers."""

    @staticmethod
    def forward(ctx, w, centers, temperature, hard):
        ctx.temperature = temperature
        ctx.save_for_backward(w, centers)
        flat = w.detach().reshape(-1)
        out = torch.empty_like(flat)
        values = centers.detach().to(w.dtype)
        if hard:
            # Strictly above a midpoint moves up: a value exactly on one goes to the lower center.
            midpoints = ((values[1:] + values[:-1]) / 2).tolist()
            for part in _chunks(flat.numel()):
                out[part] = values.index_select(0, _rank(flat[part], midpoints, inclusive=False))
        else:
            tables = _interval_tables(centers, temperature, w.dtype)
            for part in _chunks(flat.numel()):
                out[part] = _soft_chunk(flat[part], tables, temperature)[-1]
        return out.view_as(w)

    @staticmethod
    def backward(ctx, grad_output):
        w, centers = ctx.saved_tensors
        temperature = ctx.temperature
        tables = _interval_tables(centers, temperature, w.dtype)
        flat, grad_flat = w.detach().reshape(-1), grad_output.reshape(-1)
        need_w, need_c = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_w = torch.empty_like(flat) if need_w else None
        grad_c = torch.zeros(centers.numel(), dtype=torch.float64, device=w.device) if need_c else None
        values = centers.detach().to(w.dtype)
        for part in _chunks(flat.numel()):
            x, g = flat[part], grad_flat[part]
            interval, a, b, normalizer, soft = _soft_chunk(x, tables, temperature)
            if need_w:
                # a * b = exp(-|t| / T)
                grad_w[part] = a.mul_(b).mul_(tables["slope"].index_select(0, interval)).div_(normalizer).div_(normalizer).mul_(g)
            if need_c:
                # d soft / d c_j = p_j * (1 + (c_j - soft) * sign(w - c_j) / T), with the
                # softmax weight p_j = exp(-(|w - c_j| - nearest) / T) / S.
                nearest = _nearest_distance(x, values)
                for j, c in enumerate(values):
                    p = (x - c).abs_().neg_().add_(nearest).div_(temperature).exp_().div_(normalizer)
                    term = (c - soft).mul_(torch.sign(x - c)).div_(temperature).add_(1).mul_(p).mul_(g)
                    grad_c[j] += term.sum(dtype=torch.float64)
        return (grad_w.view_as(w) if need_w else None), (grad_c.to(centers.dtype) if need_c else None), None, None


def _hard(w: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """hard(w) for sorted centers `values` (L,) in w's dtype, any shape, by tensor
    operations only: the L - 1 midpoint comparisons of `_rank`, with a tie going to the
    lower center, then a lookup."""
    midpoints = (values[1:] + values[:-1]) / 2
    rank = torch.zeros_like(w, dtype=torch.int64)
    for k in range(midpoints.shape[0]):  # L is fixed, so a trace unrolls this loop
        rank += w > midpoints[k]
    return values[rank]


def _nearest_distance(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    midpoints = ((values[1:] + values[:-1]) / 2).tolist()
    return (x - values.index_select(0, _rank(x, midpoints, inclusive=False))).abs_()


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
        if not (torch.is_grad_enabled() and (w.requires_grad or self._centers.requires_grad)):
            # No gradient to pass on (inference, export): plain tensor operations, which
            # torch.jit.trace and torch.export record for any size of w; the autograd
            # Function's chunk loop and .tolist() would freeze the example's size and
            # centers into the graph. The values are the same bits: the same comparisons
            # with the same midpoints.
            return _hard(w, self.centers.detach().to(w.dtype))
        return _SoftToHard.apply(w, self.centers, self.temperature, True)

    def soft(self, w: torch.Tensor) -> torch.Tensor:
        return _SoftToHard.apply(w, self.centers, self.temperature, False)

    def indices(self, w: torch.Tensor) -> torch.Tensor:
        centers = self.centers.detach()
        return _rank(w.detach(), ((centers[1:] + centers[:-1]) / 2).tolist(), inclusive=False).long()

    def extra_repr(self) -> str:
        centers = ", ".join(f"{c:g}" for c in self.centers.tolist())
        return f"centers=[{centers}], temperature={self.temperature:g}, learnable={self.learnable}"


def _is_sequence(value) -> bool:
    return isinstance(value, (list, tuple)) or (isinstance(value, torch.Tensor) and value.dim() == 1)
