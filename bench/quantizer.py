"""Soft-to-hard quantizer: ours against a literal PyTorch translation of the original
TensorFlow code (Justin-Tan/generative-compression, network.py, `quantizer`), which
stacks L copies of w, takes |w - c| of the stack, a softmax over it and an einsum.

Measures forward + backward on a (8, 8, 64, 128) float32 tensor with L=5 centers:
median time over repeats, and peak extra memory: the rise of the process's resident-set
high-water mark (Linux VmHWM, reset just before the step) over its resident size before
it, in a fresh process per variant, with glibc's mmap threshold fixed at 64 KiB so that
every large tensor is returned to the system when freed. Prints JSON.

    python bench/quantizer.py [--repeats 20] [--shape 8 8 64 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

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


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory_here(variant: str, shape: list[int], temperature: float) -> int:
    """Peak extra bytes of one forward + backward of `variant`, in this process."""
    torch.manual_seed(0)
    w = (torch.randn(*shape) * 2).requires_grad_(True)
    fn = variants(temperature)[variant]
    for _ in range(2):
        step(fn, w)
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    step(fn, w)
    return (_status_kib("VmHWM") - before) * 1024


def peak_extra_bytes(variant: str, shape: list[int], temperature: float) -> int:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    command = [sys.executable, __file__, "--memory-of", variant, "--temperature", str(temperature),
               "--shape", *map(str, shape)]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return int(output.strip().splitlines()[-1])


def variants(temperature: float) -> dict:
    quantizer = SoftToHardQuantizer([-2, -1, 0, 1, 2], temperature=temperature)
    centers = quantizer.centers
    return {"ours": quantizer, "literal_translation": lambda x: literal_translation(x, centers, temperature)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--shape", type=int, nargs="+", default=[8, 8, 64, 128])
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--memory-of", choices=["ours", "literal_translation"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        print(measure_memory_here(args.memory_of, args.shape, args.temperature))
        return

    torch.manual_seed(0)
    w = (torch.randn(*args.shape) * 2).requires_grad_(True)
    functions = variants(args.temperature)
    ours, original = functions["ours"], functions["literal_translation"]
    centers = ours.centers
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
    for name, fn in functions.items():
        results[name] = {
            "median_seconds": median_seconds(fn, w, args.repeats),
            "peak_extra_bytes": peak_extra_bytes(name, args.shape, args.temperature),
        }
    results["speedup"] = results["literal_translation"]["median_seconds"] / results["ours"]["median_seconds"]
    results["memory_ratio"] = results["ours"]["peak_extra_bytes"] / results["literal_translation"]["peak_extra_bytes"]
    results["targets_met"] = results["speedup"] >= 3 and results["memory_ratio"] <= 0.25
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
