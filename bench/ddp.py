"""Data parallel training step on the CPU: `python train.py trainer=ddp_cpu` (2 processes,
gloo) against one process, for both DDP routes of `GANDDPStrategy`:

* separate: one DistributedDataParallel per network (the default, separate_networks=true);
* find_unused: Lightning's single wrapper around the whole task with
  find_unused_parameters=True (separate_networks=false).

Each variant is the real command a user runs (train.py on the bundled sample photos, the
demo model unless --model), with a callback of this file added on the command line. The
callback, in the first process, takes time.perf_counter() at on_train_batch_start and
on_train_batch_end, and counts the bytes that DistributedDataParallel all-reduces (a
communication hook on every wrapper that adds up the buckets' sizes before the default
all-reduce). The variants run one after another, --rounds times, in alternating order;
step times are medians after --warmup batches, pooled over the rounds.

The batch size is per process, so 2 processes train on twice the samples per step:
samples/s is world size * batch / step time. On a 2-core machine the two processes get
one thread each (Lightning sets torch's threads to cores / processes) against the single
process's two, so what this measures here is the cost of each route, not a speed-up;
on GPUs each process has its own device.

    python bench/ddp.py [--model pix2pix_small|compression] [--batches N] [--warmup W] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "1_process": ["trainer=cpu"],
    "2_processes_separate": ["trainer=ddp_cpu", "trainer.strategy.separate_networks=true"],
    "2_processes_find_unused": ["trainer=ddp_cpu", "trainer.strategy.separate_networks=false"],
}


class StepTimer(L.Callback):
    """Writes {"steps": [seconds], "reduced_bytes": [per batch], "threads", "world_size"}
    to `out` at the end of training (first process only)."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.steps: list[float] = []
        self.reduced: list[int] = []
        self._bytes = 0
        self._start = 0.0

    def _count(self, state, bucket):
        self._bytes += bucket.buffer().numel() * bucket.buffer().element_size()
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        return allreduce_hook(state, bucket)

    def on_train_start(self, trainer, pl_module) -> None:
        from torch.nn.parallel import DistributedDataParallel

        wrappers = pl_module.replicas.wrappers()
        if isinstance(trainer.strategy.model, DistributedDataParallel):
            wrappers.append(trainer.strategy.model)
        for wrapper in wrappers:
            wrapper.register_comm_hook(None, self._count)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._bytes = 0
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append(time.perf_counter() - self._start)
        self.reduced.append(self._bytes)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self.out.write_text(json.dumps({"steps": self.steps, "reduced_bytes": self.reduced,
                                            "threads": torch.get_num_threads(), "world_size": trainer.world_size}))


def run_variant(name: str, model: str, batches: int, batch_size: int, folder: Path) -> dict:
    out = folder / f"{name}.json"
    command = [
        sys.executable, str(REPO / "train.py"), *VARIANTS[name], f"model={model}", f"data.batch_size={batch_size}",
        f"data.samples_per_epoch={batch_size * 2 * batches}", f"trainer.limit_train_batches={batches}",
        "trainer.max_epochs=1", "trainer.limit_val_batches=0", "validate_before_training=false", "logger=none",
        "~callbacks.sample_grid", "~callbacks.model_checkpoint", "~callbacks.last_checkpoint",
        "trainer.enable_checkpointing=false", "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
        f"paths.log_dir={folder / 'runs'}",
        "+callbacks.bench_timer._target_=bench.ddp.StepTimer", f"+callbacks.bench_timer.out={out}",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"})
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pix2pix_small", choices=["pix2pix_small", "compression"])
    parser.add_argument("--batch-size", type=int, default=16, help="per process (the demo's data.batch_size)")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    pooled: dict[str, dict] = {name: {"steps": [], "reduced_bytes": []} for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                record = run_variant(name, args.model, args.batches, args.batch_size, Path(tmp))
                pooled[name]["steps"] += record["steps"][args.warmup:]
                pooled[name]["reduced_bytes"] += record["reduced_bytes"][args.warmup:]
                pooled[name].update(threads=record["threads"], world_size=record["world_size"])

    results = {}
    for name, record in pooled.items():
        step = statistics.median(record["steps"])
        results[name] = {
            "processes": record["world_size"], "threads_per_process": record["threads"],
            "median_step_seconds": step, "samples_per_second": record["world_size"] * args.batch_size / step,
            "allreduced_megabytes_per_step": statistics.median(record["reduced_bytes"]) / 2**20,
            "steps_timed": len(record["steps"]),
        }
    separate, unused = results["2_processes_separate"], results["2_processes_find_unused"]
    print(json.dumps({
        "model": args.model, "batch_size_per_process": args.batch_size, "cpu_cores": os.cpu_count(),
        "torch": torch.__version__, "variants": results,
        "find_unused_over_separate_step_time": unused["median_step_seconds"] / separate["median_step_seconds"],
        "separate_over_1_process_step_time": separate["median_step_seconds"] / results["1_process"]["median_step_seconds"],
        "separate_over_1_process_throughput": separate["samples_per_second"] / results["1_process"]["samples_per_second"],
    }, indent=2))


if __name__ == "__main__":
    main()
