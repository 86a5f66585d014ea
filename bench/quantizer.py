"""Soft-to-hard quantizer: ours against a literal PyTorch translation of the original
TensorFlow code (Justin-Tan/generative-compression, network.py, `quantizer`), which
stacks L copies of w, takes |w - c| of the stack, a softmax over it and an einsum.

Measures forward + backward on a (8, 8, 64, 128) float32 tensor with L=5 centers:
median time over repeats, and peak extra memory (the most bytes held at once beyond
the input, from the profiler's allocation records). Prints JSON.

    python bench/quantizer.py [--repeats 20] [--shape 8 8 64 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from ganforge.nn import SoftToHardQuantizer


def literal_translation(w: torch.Tensor, centers: torch.Tensor, temperature: float) -> torch.Tensor:
    """The TF original, op for op (its final round is left out: it blocks every gradient)."""
    count = centers.numel()
    w_stack = torch.stack([w for _ in range(count)], dim=-1)
    w_hard = torch.argmin(torch.abs(w_stack - centers), dim=-1).float() + centers.min()
    smx = torch.softmax(-1.0 / temperature * torch.abs(w_stack - centers), dim=-1)
    w_soft = torch.einsum("ijklm,m->ijkl", smx, centers)
    return (w_hard - w_soft).detach() + w_soft


def step(fn, w: torch.Tensor) -> None:
    out = fn(w)
    out.backward(torch.ones_like(out))
    w.grad = None


def median_seconds(fn, w: torch.Tensor, repeats: int) -> float:
    for _ in range(3):
        step(fn, w)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(fn, w)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_extra_bytes(fn, w: torch.Tensor) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(fn, w)
    events = sorted(
        (e for e in prof.events() if e.name == "[memory]"), key=lambda e: e.time_range.start
    )
    held = peak = 0
    for event in events:
        held += event.cpu_memory_usage
        peak = max(peak, held)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--shape", type=int, nargs="+", default=[8, 8, 64, 128])
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()

    torch.manual_seed(0)
    w = (torch.randn(*args.shape) * 2).requires_grad_(True)
    quantizer = SoftToHardQuantizer([-2, -1, 0, 1, 2], temperature=args.temperature)
    centers = quantizer.centers

    ours = quantizer
    original = lambda x: literal_translation(x, centers, args.temperature)  # noqa: E731
    # Both give the same values (the nearest centers) and the same gradients.
    same_values = torch.equal(ours(w), original(w))
    g_ours = torch.autograd.grad(ours(w).sum(), w)[0]
    g_original = torch.autograd.grad(original(w).sum(), w)[0]
    results = {
        "shape": list(args.shape),
        "centers": centers.tolist(),
        "threads": torch.get_num_threads(),
        "same_values": same_values,
        "max_gradient_difference": (g_ours - g_original).abs().max().item(),
        "input_bytes": w.numel() * w.element_size(),
    }
    for name, fn in (("ours", ours), ("literal_translation", original)):
        results[name] = {
            "median_seconds": median_seconds(fn, w, args.repeats),
            "peak_extra_bytes": peak_extra_bytes(fn, w),
        }
    results["speedup"] = results["literal_translation"]["median_seconds"] / results["ours"]["median_seconds"]
    results["memory_ratio"] = results["ours"]["peak_extra_bytes"] / results["literal_translation"]["peak_extra_bytes"]
    results["targets_met"] = results["speedup"] >= 3 and results["memory_ratio"] <= 0.25
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
