"""Training-step time of our LightningModules inside a Lightning Trainer, against a plain
PyTorch loop over the same networks, losses and optimizers; FLOPs; a matmul reference.

Configs (paper sizes, CPU): pix2pix (unet_256 + 70x70 PatchGAN, batch norm, vanilla GAN
loss, lambda_L1 100; aligned A|B pairs 3 -> 3 channels, 256x256, generated in a temporary
folder and read by `PairedDataModule` with its configured 2 workers) at batch 1 and 4;
generative compression (widths 1.0, 9 residual blocks, C=8, L=5, a 3-scale ndf-64
discriminator, instance norm, LSGAN, lambda_MSE 12, feature matching 10, EMA 0.999: the
settings of conf/experiment/gc_cityscapes.yaml) on 256x512 crops of the bundled photos from
`SampleDataModule` (0 workers), batch 1; generation from noise at batch 64, 32x32 RGB (a class
folder of smooth PNGs in 10 class subfolders, generated in the temporary folder and read by
`ClassFolderDataModule` with its configured 4 workers; unconditional, so "label" is unused):
dcgan (experiment=sndcgan_cifar10: SNDCGAN at the paper's widths G 512 / D 64, hinge,
n_critic 1, EMA) and sngan (experiment=sngan_cifar10: the ResNet, G 256 / D 128, hinge,
n_critic 5, EMA).

A "step" is one training batch: one D step and, on every n_critic-th batch, a G step (and the
EMA update). With n_critic 1 (all but sngan) every batch is both, and a step's time is the
median. With n_critic > 1 warm-up and timed batches are rounded up to whole D/G cycles, ours
and plain take their G steps on the same batches (the plain loop counts batches as the task
counts batch_idx), and a step's time (`seconds_per_batch`) is the mean batch time of a cycle
from the medians of each kind: (1 - 1/n_critic) * median(D-only) + 1/n_critic * median(D+G);
both kinds are reported (`d_only`, `d_and_g`), and so are the pairs' median ratios per kind.

Per config, three fresh subprocesses:
* paired (the overhead ratio): ours and plain in one process, step for step. "ours" is
  the task in `lightning.Trainer` (CPU, logger=False, no checkpointing, progress bar or
  model summary, inference_mode=False, limit_val_batches=0), batches from the DataModule's
  train_dataloader; a callback takes time.perf_counter() at on_train_batch_start and
  on_train_batch_end (the module's on_train_batch_start hook and training_step are
  inside). Beside every Trainer batch the callback runs one timed "plain" step on a second
  copy of the networks: before the batch's window on even batches, after it on odd ones.
  Both variants thus see the machine at the same moments; separate runs on this (virtual)
  machine drift by 10-20 % between minutes, more than the 3 % being measured.
* ours alone, plain alone (--rounds times each, in the order ours, plain, plain, ours,
  ..., with half the timed steps): peak memory, CPU use, and the step times once more. "iteration" (ours alone) is
  the time from one batch start to the next (adds fetching the batch and the loop's work).
The plain loop: the same networks (task.generator / task.discriminator), task.gan_loss and
hand-written inputs and extra losses (checked equal to task.prepare / task.generator_losses,
and G's adversarial loss to the task's on the same D output, on the first batch with a G
step; generation: z ~ N(0, I) (batch, z_dim) from torch's generator, real = image * 2 - 1), two Adam
optimizers made by task.adam (fused, as the task's, unless model.optim.fused is off), D excluded from G's
backward (requires_grad off, as toggle_optimizer does), EMA
and symbol counts where the task does them; one fixed batch from the same DataModule.
Step times: medians of the steps after each run's warm-up (pooled over the rounds; n_critic > 1: see above).
CPU per step (getrusage over the timed steps): user and system seconds and minor page
faults, the faults being memory that the allocator returned to the kernel and touches anew.
FLOPs: one plain step under torch.utils.flop_counter.FlopCounterMode (forward and backward
of both networks; a D+G batch); GFLOP/s = FLOPs / median step time. With n_critic > 1 a
D-only batch is counted too, and GFLOP/s = the cycle's mean FLOPs per batch (`flops_per_batch`)
/ seconds_per_batch. Peak memory: each subprocess's resident-set high-water mark
(getrusage ru_maxrss) after its timed steps, the largest over the rounds: the whole
process (Python, torch, the model, optimizer state, activations), the DataLoader workers
(separate processes) not included. The matmul reference: the median
of repeated 2048x2048 float32 torch.mm, at the start and at the end of the run; the better
of the two is the machine's practical limit.

The generation-metrics pass (`run_metrics_pass`; added to a run with a dcgan or sngan config,
or alone with --metrics-pass): GenerationTask validation as train.py runs it, trainer.validate
with the GenerationMetrics callback (classifier feature space) on the demo `model=dcgan` and
the digits' 1797-image reference set; the classifier's one-time training is timed first and
apart, the first validation (with the reference features) and a later one separately.
Prints JSON.

    python bench/train_step.py [--configs pix2pix_b1 pix2pix_b4 compression_b1 dcgan_b64 sngan_b64]
                               [--warmup W] [--steps N] [--rounds R] [--quick]
    python bench/train_step.py --metrics-pass [--quick]           # one generation-metrics validation
    python bench/train_step.py --profile [--config pix2pix_b4]   # where the time goes

The parts: bench/harness.py (the models' tasks and data from conf/, summaries, measures),
bench/plain_loop.py (the hand-written loop and its FLOPs), bench/step_profile.py
(--profile), bench/metrics_pass.py (--metrics-pass); this file runs the configs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from harness import (GENERATION_MODELS, cpu_usage, first_batch, generator_step, image_side, load_average,
                     make_data, make_datamodule, make_task, make_trainer, matmul_gflops, n_critic_of,
                     peak_rss_bytes, quiet, rss_bytes, summary)
from metrics_pass import run_metrics_pass
from plain_loop import PlainLoop, step_flops
from step_profile import profile_step

# name -> (model, batch size, warm-up steps per run, timed steps per run); with the default
# 1 round (3 processes per config) the pix2pix and compression configs take about 5 minutes
# on 2 cores, dcgan_b64 and sngan_b64 (with the metrics pass) about 6 more (estimated).
# Generation with n_critic > 1 (sngan: 5) warms up and times whole D/G cycles: warm-up and
# timed batches are rounded up to multiples of n_critic.
CONFIGS = {
    "pix2pix_b1": ("pix2pix", 1, 2, 8),
    "pix2pix_b4": ("pix2pix", 4, 2, 4),
    "compression_b1": ("compression", 1, 1, 3),
    "dcgan_b64": ("dcgan", 64, 2, 8),
    "sngan_b64": ("sngan", 64, 5, 10),
}
# --quick: small networks and images, the same code paths.
QUICK = {
    "pix2pix_b1": ("pix2pix_quick", 1, 1, 2),
    "pix2pix_b4": ("pix2pix_quick", 4, 1, 2),
    "compression_b1": ("compression_quick", 1, 1, 2),
    "dcgan_b64": ("dcgan_quick", 64, 1, 2),
    "sngan_b64": ("sngan_quick", 64, 5, 5),
}


def run_plain(model: str, batch_size: int, warmup: int, steps: int, pairs_root: str | None, flops: bool = False) -> dict:
    torch.manual_seed(0)
    task = make_task(model)
    batch = first_batch(model, batch_size, pairs_root)
    loop = PlainLoop(task)
    rss_before = rss_bytes()
    times, generator_steps, matches = [], [], None
    for i in range(warmup + steps):
        if i == warmup:
            usage = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        out = loop.step(batch, check=matches is None)
        times.append(time.perf_counter() - start)
        generator_steps.append(out["generator_step"])
        matches = out.get("matches_task", matches)
    usage = cpu_usage(usage, resource.getrusage(resource.RUSAGE_SELF), steps)
    peak = peak_rss_bytes()
    result = {"step": summary(times[warmup:], generator_steps[warmup:]), "warmup_seconds": times[:warmup],
              "step_seconds": times[warmup:], "generator_steps": generator_steps[warmup:],
              "cpu": usage, "rss_before_steps_bytes": rss_before, "peak_rss_bytes": peak,
              "matches_task_losses": matches}
    if flops:
        result["flops"] = step_flops(loop, batch)
    return result




# ---- ours: the LightningModule in a Trainer ----------------------------------------------

def step_timer(warmup: int):
    import lightning as L

    class StepTimer(L.Callback):
        """perf_counter at on_train_batch_start / on_train_batch_end of every batch; getrusage
        at the start of the first timed batch and at the end of the last."""

        def __init__(self) -> None:
            self.steps: list[float] = []
            self.generator_steps: list[bool] = []
            self.iterations: list[float] = []
            self._start: float | None = None
            self.usage = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            now = time.perf_counter()
            if self._start is not None:
                self.iterations.append(now - self._start)
            if len(self.steps) == warmup:
                self.usage = [resource.getrusage(resource.RUSAGE_SELF)]
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.steps.append(time.perf_counter() - self._start)
            self.generator_steps.append(generator_step(pl_module, batch_idx))
            self.usage[1:] = [resource.getrusage(resource.RUSAGE_SELF)]

    return StepTimer()



def run_ours(model: str, batch_size: int, warmup: int, steps: int, pairs_root: str | None) -> dict:
    import lightning as L

    quiet()
    L.seed_everything(0, verbose=False)
    task = make_task(model)
    datamodule = make_datamodule(model, batch_size, warmup + steps + 1, pairs_root)
    timer = step_timer(warmup)
    trainer = make_trainer(warmup + steps, [timer], task.n_critic)
    rss_before = rss_bytes()
    trainer.fit(task, datamodule=datamodule)
    peak = peak_rss_bytes()
    times, generator_steps = timer.steps, timer.generator_steps
    return {"step": summary(times[warmup:], generator_steps[warmup:]), "warmup_seconds": times[:warmup],
            "step_seconds": times[warmup:], "generator_steps": generator_steps[warmup:],
            "iteration_seconds": timer.iterations[warmup:], "cpu": cpu_usage(*timer.usage, steps),
            "rss_before_steps_bytes": rss_before,
            "peak_rss_bytes": peak, "num_workers": datamodule.num_workers}


def run_paired(model: str, batch_size: int, warmup: int, steps: int, pairs_root: str | None,
               flops: bool = False) -> dict:
    """Ours and plain in one process, step for step: the Trainer runs the task while a
    callback runs one plain-loop step (on a second copy of the networks, its own
    optimizers and a fixed batch) beside every Trainer batch, before the batch's timed
    window on even batches and after it on odd ones. Both see the same machine at the same
    moments, so the ratio is free of the drift between separate runs."""
    import lightning as L

    quiet()
    L.seed_everything(0, verbose=False)
    task = make_task(model)
    loop = PlainLoop(make_task(model))
    plain_batch = first_batch(model, batch_size, pairs_root)
    datamodule = make_datamodule(model, batch_size, warmup + steps + 1, pairs_root)

    class Paired(L.Callback):
        """Plain step i beside Trainer batch i: with n_critic > 1 both take their G step on
        the same batches (the loop counts batches as the task counts batch_idx)."""

        def __init__(self) -> None:
            self.ours: list[float] = []
            self.plain: list[float] = []
            self.generator_steps: list[bool] = []
            self.plain_generator_steps: list[bool] = []
            self.matches = None

        def _plain_step(self) -> None:
            start = time.perf_counter()
            out = loop.step(plain_batch, check=self.matches is None)
            self.plain.append(time.perf_counter() - start)
            self.plain_generator_steps.append(out["generator_step"])
            self.matches = out.get("matches_task", self.matches)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if len(self.ours) % 2 == 0:
                self._plain_step()
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.ours.append(time.perf_counter() - self._start)
            self.generator_steps.append(generator_step(pl_module, batch_idx))
            if len(self.ours) % 2 == 0:
                self._plain_step()

    paired = Paired()
    make_trainer(warmup + steps, [paired], task.n_critic).fit(task, datamodule=datamodule)
    ours, plain = paired.ours[warmup:], paired.plain[warmup:]
    flags = paired.generator_steps[warmup:]
    result = {"ours": summary(ours, flags), "plain": summary(plain, paired.plain_generator_steps[warmup:]),
              "ours_step_seconds": ours, "plain_step_seconds": plain, "generator_steps": flags,
              "same_generator_steps": flags == paired.plain_generator_steps[warmup:],
              "warmup_seconds": {"ours": paired.ours[:warmup], "plain": paired.plain[:warmup]},
              "pair_ratios": [a / b for a, b in zip(ours, plain)], "matches_task_losses": paired.matches}
    if flops:
        result["flops"] = step_flops(loop, plain_batch)
    return result



# ---- the parent: every config, each variant in its own process -----------------------------

def run_child(variant: str, config: str, model: str, batch: int, warmup: int, steps: int, pairs_root: str,
              flops: bool = False, quick: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", variant, "--model", model, "--batch", str(batch),
               "--warmup", str(warmup), "--steps", str(steps), "--pairs-root", pairs_root]
    command += (["--count-flops"] if flops else []) + (["--quick"] if quick else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{config} {variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def whole_cycles(batches: int, n_critic: int) -> int:
    """`batches` rounded up to a multiple of n_critic (whole D/G cycles)."""
    return -(-batches // n_critic) * n_critic


def run_config(name: str, model: str, batch: int, warmup: int, steps: int, rounds: int, pairs_root: str,
               n_critic: int = 1) -> dict:
    """The paired run (the overhead ratio), then `rounds` separate runs of each variant in
    fresh processes, in the order ours, plain, plain, ours, ... (peak memory, CPU use,
    and the step times once more, each variant alone). With n_critic > 1, warm-up and
    timed batches are whole D/G cycles and a "step" is one training batch (`summary`)."""
    entry = {"model": model, "batch_size": batch, "image_size": list(image_side(model)), "n_critic": n_critic,
             "warmup_steps_per_run": warmup, "timed_steps_per_paired_run": steps, "rounds": rounds,
             "load_average_before": load_average()}
    if n_critic > 1:
        entry["step_definition"] = (
            f"one training batch: a D step, and on every {n_critic}th batch a G step (and the EMA update) too; "
            "ours and plain take their G steps on the same batches. Step times (seconds_per_batch) are the "
            "mean batch time of a D/G cycle, (1 - 1/n_critic) * median(D-only batches) + 1/n_critic * "
            "median(D+G batches), each kind also reported (d_only, d_and_g); flops_per_step counts one D+G batch, "
            "GFLOP/s divides flops_per_batch (the cycle's mean) by seconds_per_batch")
    paired = run_child("paired", name, model, batch, warmup, steps, pairs_root, flops=True)
    flops = paired.pop("flops")
    entry["paired"] = paired
    runs: dict[str, list[dict]] = {"ours": [], "plain": []}
    # these runs are for memory and CPU use: half the steps (whole cycles)
    alone_steps = whole_cycles((steps + 1) // 2, n_critic)
    entry["timed_steps_per_alone_run"] = alone_steps
    for r in range(rounds):
        for variant in ("ours", "plain") if r % 2 == 0 else ("plain", "ours"):
            runs[variant].append(run_child(variant, name, model, batch, warmup, alone_steps, pairs_root))
    entry["load_average_after"] = load_average()
    for variant, done in runs.items():
        alone = {"step": summary([t for run in done for t in run["step_seconds"]],
                                 [g for run in done for g in run["generator_steps"]]),
                 "seconds_per_batch_per_run": [run["step"]["seconds_per_batch"] for run in done],
                 "cpu_per_step": {k: statistics.mean(run["cpu"][k] for run in done) for k in done[0]["cpu"]},
                 "peak_rss_bytes": max(run["peak_rss_bytes"] for run in done),
                 "rss_before_steps_bytes": max(run["rss_before_steps_bytes"] for run in done)}
        if variant == "ours":
            alone["iteration"] = summary([t for run in done for t in run["iteration_seconds"]])
            alone["num_workers"] = done[0]["num_workers"]
        else:
            alone["matches_task_losses"] = all(run["matches_task_losses"] for run in done)
        alone["runs"] = done
        entry[f"{variant}_alone"] = alone
    entry["flops_per_step"] = flops["total"]
    entry["flops_per_batch"] = flops["per_batch"]
    if "d_only_total" in flops:
        entry["flops_per_d_only_batch"] = flops["d_only_total"]
    entry["flops_by_op"] = flops["by_op"]
    ours, plain = paired["ours"]["seconds_per_batch"], paired["plain"]["seconds_per_batch"]
    entry["matches_task_losses"] = bool(paired["matches_task_losses"] and entry["plain_alone"]["matches_task_losses"])
    entry["overhead_ratio_ours_over_plain"] = ours / plain
    entry["median_pair_ratio"] = statistics.median(paired["pair_ratios"])
    if n_critic > 1:
        for kind, flag in (("d_only", False), ("d_and_g", True)):
            ratios = [r for r, g in zip(paired["pair_ratios"], paired["generator_steps"]) if g == flag]
            entry[f"median_pair_ratio_{kind}"] = statistics.median(ratios) if ratios else None
    entry["overhead_ratio_separate_runs"] = (entry["ours_alone"]["step"]["seconds_per_batch"]
                                             / entry["plain_alone"]["step"]["seconds_per_batch"])
    entry["ours_gflops_per_second"] = flops["per_batch"] / ours / 1e9
    entry["plain_gflops_per_second"] = flops["per_batch"] / plain / 1e9
    return entry



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--warmup", type=int, help="warm-up steps (default: per config)")
    parser.add_argument("--steps", type=int, help="timed steps (default: per config)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="separate runs of each variant per config (memory; ABBA order)")
    parser.add_argument("--quick", action="store_true", help="tiny networks and images: a smoke run")
    parser.add_argument("--profile", action="store_true", help="profile one config's step instead (JSON)")
    parser.add_argument("--config", choices=list(CONFIGS), default="pix2pix_b4", help="the config --profile runs")
    parser.add_argument("--metrics-pass", action="store_true",
                        help="only time one generation-metrics validation (the runs with dcgan/sngan configs add it)")
    parser.add_argument("--child", choices=["ours", "plain", "paired", "metrics"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pairs-root", help=argparse.SUPPRESS)
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child == "metrics":
            result = run_metrics_pass(args.quick)
        elif args.child == "ours":
            result = run_ours(args.model, args.batch, args.warmup, args.steps, args.pairs_root)
        elif args.child == "paired":
            result = run_paired(args.model, args.batch, args.warmup, args.steps, args.pairs_root, args.count_flops)
        else:
            result = run_plain(args.model, args.batch, args.warmup, args.steps, args.pairs_root, args.count_flops)
        print(json.dumps(result))
        return
    table = QUICK if args.quick else CONFIGS
    if args.metrics_pass:
        print(json.dumps(run_child("metrics", "metrics pass", "dcgan", 0, 0, 0, "", quick=args.quick), indent=2))
        return
    if args.profile:
        model, batch, _, _ = table[args.config]
        with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as tmp:
            warmup, steps = args.warmup if args.warmup is not None else 2, args.steps or 2
            root = make_data(model, Path(tmp), batch * (warmup + 2 * steps + 1))
            result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "config": args.config,
                      "model": model, "batch_size": batch, "load_average_before": load_average()}
            result.update(profile_step(model, batch, warmup, steps, str(root)))
            result["load_average_after"] = load_average()
        print(json.dumps(result, indent=2))
        return

    results = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "quick": args.quick, "load_average_start": load_average(), "matmul_start": matmul_gflops(),
        "configs": {},
    }
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as tmp:
        plans = {}  # name -> (model, batch, warm-up, timed steps, n_critic): whole D/G cycles
        for name in args.configs:
            model, batch, warmup, steps = table[name]
            n_critic = n_critic_of(model) if model in GENERATION_MODELS else 1
            warmup = whole_cycles(args.warmup if args.warmup is not None else warmup, n_critic)
            plans[name] = (model, batch, warmup, whole_cycles(args.steps or steps, n_critic), n_critic)
        roots = {}  # one data folder per kind, as large as its largest config needs (one epoch)
        for kind, models in (("pairs", ("pix2pix", "pix2pix_quick")), ("classes", GENERATION_MODELS)):
            chosen = [(m, b * (w + n + 2)) for m, b, w, n, _ in plans.values() if m in models]
            if chosen:
                roots[kind] = make_data(chosen[0][0], Path(tmp), max(count for _, count in chosen))
        for name, (model, batch, warmup, steps, n_critic) in plans.items():
            root = roots.get("classes" if model in GENERATION_MODELS else "pairs", Path(tmp))  # compression: unused
            results["configs"][name] = run_config(name, model, batch, warmup, steps, args.rounds, str(root), n_critic)
    if any(plan[0] in GENERATION_MODELS for plan in plans.values()):
        results["generation_metrics_pass"] = run_child("metrics", "metrics pass", "dcgan", 0, 0, 0, "",
                                                       quick=args.quick)
    results["matmul_end"] = matmul_gflops()
    results["load_average_end"] = load_average()
    # the practical limit: the better of the two (the slower one saw more interference)
    matmul = max(results["matmul_start"]["gflops_per_second"], results["matmul_end"]["gflops_per_second"])
    results["matmul_gflops_per_second"] = matmul
    for entry in results["configs"].values():
        entry["ours_fraction_of_matmul"] = entry["ours_gflops_per_second"] / matmul
        entry["plain_fraction_of_matmul"] = entry["plain_gflops_per_second"] / matmul
    configs = results["configs"]
    results["targets"] = {
        "overhead_ratio_le_1.03 (paired)": {k: v["overhead_ratio_ours_over_plain"] <= 1.03 for k, v in configs.items()},
        "pix2pix_fraction_of_matmul_ge_0.45": {k: v["ours_fraction_of_matmul"] >= 0.45
                                                for k, v in configs.items() if v["model"].startswith("pix2pix")},
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
