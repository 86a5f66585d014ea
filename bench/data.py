"""How fast our DataModules deliver training batches, against how fast the train step
consumes them (target: the loader at least 10x faster than the step).

Cases, each with the loader settings of its conf/data/*.yaml (workers included):
* sample: `SampleDataModule` as configured (64 px crops of the bundled photos at scale
  0.5, batch 16, 0 workers), for the CPU demo model (pix2pix_small, colorization);
* paired_b1, paired_b4: `PairedDataModule` (aligned A|B JPEGs of 256x512, resized to 286,
  256 px crops, 2 workers), for pix2pix (unet_256) at batch 1 and 4;
* folder: `FolderDataModule` as configured (256 px crops, scale 1, batch 4, 2 workers) on
  Cityscapes-sized 1024x2048 PNGs, for pix2pix colorization at 256 px, batch 4;
* folder_gc: the same folder at gc_cityscapes' scale 0.5, crops of 256x512, batch 1,
  2 workers, for generative compression at the paper's widths.
The images are generated in a temporary folder.

Loader: iterate train_dataloader(); the first batch (worker start-up included) is timed
on its own, the next 2 * num_workers batches (prefetched while the workers started) are
skipped, then --batches batches are timed: batches/s = batches / their wall time. Also
the CPU seconds the loading costs per batch (the workers' utime + stime from /proc, or
this process's CPU time with 0 workers): on a 2-core machine that time is taken from the
training step's threads.

Step: the median of a plain-loop training step (bench/plain_loop.py's PlainLoop, --warmup
and --steps), or, with --step-json, the "ours" medians of a bench/train_step.py run for
the configs it holds (pix2pix_b1 -> paired_b1, pix2pix_b4 -> paired_b4, compression_b1
-> folder_gc). Prints JSON.

    python bench/data.py [--cases sample paired_b1 ...] [--batches 30] [--step-json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  (bench/harness.py)
from plain_loop import PlainLoop  # noqa: E402

# case -> (data, batch size, the model whose step consumes it, train_step.py's config)
CASES = {
    "sample": ("sample", 16, "pix2pix_small", None),
    "paired_b1": ("paired", 1, "pix2pix", "pix2pix_b1"),
    "paired_b4": ("paired", 4, "pix2pix", "pix2pix_b4"),
    "folder": ("folder", 4, "pix2pix_images", None),
    "folder_gc": ("folder_gc", 1, "compression", "compression_b1"),
}


def make_datamodule(data: str, batch: int, batches: int, pairs_root: str, folder_root: str):
    from ganforge.data import FolderDataModule, PairedDataModule, SampleDataModule

    if data == "sample":  # conf/data/sample.yaml
        return SampleDataModule(crop_size=64, scale=0.5, samples_per_epoch=max(640, batch * batches),
                                batch_size=batch, num_workers=0, seed=0)
    if data == "paired":  # conf/data/paired.yaml (+ experiment=pix2pix_facades' direction)
        return PairedDataModule(root=pairs_root, crop_size=256, load_size=286, direction="BtoA", batch_size=batch,
                                num_workers=2, seed=0)
    if data == "folder":  # conf/data/folder.yaml
        return FolderDataModule(root=folder_root, crop_size=256, scale=1.0, samples_per_epoch=max(1000, batch * batches),
                                batch_size=batch, num_workers=2, seed=0)
    if data == "folder_gc":  # conf/experiment/gc_cityscapes.yaml's scale, at the bench's crop
        return FolderDataModule(root=folder_root, crop_size=[256, 512], scale=0.5,
                                samples_per_epoch=max(1000, batch * batches), batch_size=batch, num_workers=2, seed=0)
    raise ValueError(data)


def _cpu_seconds_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def loader_speed(datamodule, batches: int) -> dict:
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    start = time.perf_counter()
    iterator = iter(loader)
    next(iterator)
    first = time.perf_counter() - start
    workers = [w.pid for w in getattr(iterator, "_workers", [])]
    for _ in range(2 * datamodule.num_workers):
        next(iterator)

    def cpu() -> float:
        return sum(_cpu_seconds_of(pid) for pid in workers) if workers else time.process_time()

    cpu_start, start = cpu(), time.perf_counter()
    intervals, last = [], start
    for _ in range(batches):
        next(iterator)
        now = time.perf_counter()
        intervals.append(now - last)
        last = now
    wall = time.perf_counter() - start
    cpu_used = cpu() - cpu_start
    del iterator
    return {"num_workers": datamodule.num_workers, "batches_timed": batches, "first_batch_seconds": first,
            "batches_per_second": batches / wall, "median_batch_interval_seconds": statistics.median(intervals),
            "cpu_seconds_per_batch": cpu_used / batches}


def plain_step_seconds(model: str, batch: int, warmup: int, steps: int, pairs_root: str) -> dict:
    torch.manual_seed(0)
    loop = PlainLoop(harness.make_task(model))
    if model == "pix2pix_images":  # a colorization batch at 256 px: any photo crop will do
        from ganforge.data import SampleDataModule

        datamodule = SampleDataModule(crop_size=256, scale=1.0, samples_per_epoch=batch,
                                      val_images=["motorcycle_right"], batch_size=batch, seed=0)
    elif model == "pix2pix_small":
        datamodule = make_datamodule("sample", batch, 1, pairs_root, "")
    else:
        datamodule = harness.make_datamodule(model, batch, 1, pairs_root, num_workers=0)
    datamodule.num_workers = 0
    datamodule.setup("fit")
    data = next(iter(datamodule.train_dataloader()))
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        loop.step(data)
        times.append(time.perf_counter() - start)
    return {"source": "plain loop, this run", "median_seconds": statistics.median(times[warmup:]),
            "warmup_steps": warmup, "timed_steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--batches", type=int, default=30, help="timed batches per case")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up steps of the plain step")
    parser.add_argument("--steps", type=int, default=2, help="timed plain steps")
    parser.add_argument("--step-json", help="take the step times from this bench/train_step.py output")
    parser.add_argument("--no-steps", action="store_true", help="loader speeds only")
    args = parser.parse_args()

    measured = {}
    if args.step_json:
        report = json.loads(Path(args.step_json).read_text())
        measured = {name: {"source": f"{args.step_json}: ours (Trainer) median",
                           **(entry["paired"]["ours"] if "paired" in entry else entry["ours"]["step"]),
                           "load_average_then": entry.get("load_average_before")}
                    for name, entry in report["configs"].items()}
    harness.quiet()
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
               "load_average_start": harness.load_average(), "cases": {}}
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as tmp:
        most = max(b for d, b, *_ in CASES.values() if d == "paired") * (args.batches + 6)
        pairs_root = str(harness.make_pairs_folder(Path(tmp) / "pairs", most, 256))
        folder_root = str(harness.make_image_folder(Path(tmp) / "folder", 12))
        for name in args.cases:
            data, batch, model, config = CASES[name]
            entry = {"data": data, "batch_size": batch, "model": model, "load_average_before": harness.load_average()}
            entry["loader"] = loader_speed(make_datamodule(data, batch, args.batches + 6, pairs_root, folder_root),
                                           args.batches)
            if not args.no_steps:
                step = measured.get(config) or plain_step_seconds(model, batch, args.warmup, args.steps, pairs_root)
                entry["step"] = step
                seconds = step["median_seconds"]
                entry["loader_over_step_speed"] = entry["loader"]["batches_per_second"] * seconds
                entry["loader_cpu_share_of_step"] = entry["loader"]["cpu_seconds_per_batch"] / (
                    seconds * torch.get_num_threads())
                entry["target_met"] = entry["loader_over_step_speed"] >= 10
            entry["load_average_after"] = harness.load_average()
            results["cases"][name] = entry
    results["load_average_end"] = harness.load_average()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
