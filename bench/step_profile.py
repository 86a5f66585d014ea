"""Where a training step's time goes (`python bench/train_step.py --profile`): torch.profiler
over plain-loop and Trainer steps, self CPU time by category, and the wall time of
Lightning's and ganforge's per-step Python parts."""

from __future__ import annotations

import statistics
import time

import torch
from harness import first_batch, make_datamodule, make_task, make_trainer, quiet
from plain_loop import PlainLoop

# An op's self time goes to the category of its outermost ancestor (itself included) that
# matches one of these; backward ops are the autograd nodes' evaluate_function events.
CATEGORIES = [
    (r"^Optimizer\.step#", "adam_update"),
    (r"^Optimizer\.zero_grad#", "zero_grad"),
    (r"ConvolutionBackward", "conv_backward"),
    (r"^aten::(conv2d|conv_transpose2d|convolution|_convolution|mkldnn_convolution)$", "conv_forward"),
    (r"NativeBatchNormBackward|InstanceNorm", "batch_norm_backward"),
    (r"^aten::(batch_norm|instance_norm)$", "batch_norm_forward"),
    (r"LeakyReluBackward", "leaky_relu_backward"),
    (r"^aten::leaky_relu$", "leaky_relu_forward"),
    (r"ReluBackward|ThresholdBackward", "relu_backward"),
    (r"^aten::relu$", "relu_forward"),
    (r"CatBackward", "cat_backward"),
    (r"^aten::cat$", "cat_forward (U-Net skips, D input)"),
    (r"^aten::(dropout|native_dropout|feature_dropout)$|DropoutBackward", "dropout"),
    (r"AccumulateGrad", "grad_accumulate"),
    (r"TanhBackward|^aten::tanh$", "tanh"),
    (r"^aten::(l1_loss|mse_loss|binary_cross_entropy_with_logits)$|L1Loss|MseLoss|BinaryCrossEntropy", "losses"),
]


def categorize(events, steps: int) -> dict:
    import re

    rules = [(re.compile(pattern), name) for pattern, name in CATEGORIES]
    totals: dict[str, float] = {}
    others: dict[str, float] = {}
    for event in events:
        chain, node = [], event
        while node is not None:
            chain.append(node.name)
            node = node.cpu_parent
        category = None
        for name in reversed(chain):  # outermost first
            category = next((c for rule, c in rules if rule.search(name)), None)
            if category:
                break
        self_ms = event.self_cpu_time_total / 1000 / steps
        if category is None:
            category = "other"
            others[event.name] = others.get(event.name, 0.0) + self_ms
        totals[category] = totals.get(category, 0.0) + self_ms
    whole = sum(totals.values())
    table = {k: {"ms_per_step": round(v, 2), "share": round(v / whole, 4)}
             for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    top_other = {k: round(v, 2) for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:8]}
    return {"self_cpu_ms_per_step": round(whole, 1), "by_category": table, "other_top_ms_per_step": top_other}


def top_ops(profiler, steps: int, count: int = 15) -> list[dict]:
    averages = sorted(profiler.key_averages(), key=lambda e: -e.self_cpu_time_total)
    whole = sum(e.self_cpu_time_total for e in averages)
    return [{"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total / 1000 / steps, 2),
             "share": round(e.self_cpu_time_total / whole, 4), "calls_per_step": e.count / steps}
            for e in averages[:count]]


class Stopwatch:
    """Wraps bound methods and callables; adds up their wall time by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.active = False

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if self.active:
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                    self.calls[name] = self.calls.get(name, 0) + 1
        return timed


def profile_step(model: str, batch_size: int, warmup: int, steps: int, pairs_root: str) -> dict:
    """torch.profiler over `steps` plain-loop steps and `steps` Trainer steps (after
    `warmup` each), and the wall time of Lightning's and ganforge's per-step Python parts."""
    import lightning as L
    from torch.profiler import ProfilerActivity, profile

    quiet()
    # the plain loop
    torch.manual_seed(0)
    loop = PlainLoop(make_task(model))
    batch = first_batch(model, batch_size, pairs_root)
    for _ in range(warmup):
        loop.step(batch)
    plain_times = []
    with profile(activities=[ProfilerActivity.CPU]) as plain_profiler:
        for _ in range(steps):
            start = time.perf_counter()
            loop.step(batch)
            plain_times.append(time.perf_counter() - start)
    plain_events = plain_profiler.events()
    result = {"warmup_steps": warmup, "profiled_steps": steps}
    result["plain"] = {"profiled_step_seconds": plain_times, "top_ops_by_self_cpu": top_ops(plain_profiler, steps),
                       **categorize(plain_events, steps)}
    # unprofiled plain steps, for the Lightning comparison below
    plain_clean = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loop.step(batch)
        plain_clean.append(time.perf_counter() - start)
    del loop, plain_profiler, plain_events

    # ours, with the profiler around `steps` batches after `warmup`, then `steps` batches
    # with stopwatches on the per-step Python parts
    L.seed_everything(0, verbose=False)
    task = make_task(model)
    watch = Stopwatch()
    names = ["training_step", "on_train_batch_start", "toggle_optimizer", "untoggle_optimizer", "optimizers",
             "log", "log_dict", "_finite_or_skip", "manual_backward", "_step",
             "after_generator_step", "prepare", "generate", "discriminate", "generator_losses"]
    for name in names:
        setattr(task, name, watch.wrap(name, getattr(task, name)))
    # the EMA update is ganforge.tasks.ema.update_average, called from ganforge.tasks.gan
    import ganforge.tasks.gan as gan_module

    gan_module.update_average = watch.wrap("update_average (EMA)", gan_module.update_average)

    class Window(L.Callback):
        def __init__(self) -> None:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.step_times: list[float] = []
            self.watched_times: list[float] = []
            self._warm = 0

        def on_train_start(self, trainer, pl_module) -> None:
            for optimizer in trainer.optimizers:  # the torch optimizers inside Lightning's wrappers
                optimizer.step = watch.wrap("adam_step", optimizer.step)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self._index = len(self.step_times) + len(self.watched_times) + self._warm
            if self._index == warmup:
                self.profiler.__enter__()
            watch.active = self._index >= warmup + steps
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            elapsed = time.perf_counter() - self._start
            watch.active = False
            if self._index < warmup:
                self._warm += 1
            elif self._index < warmup + steps:
                self.step_times.append(elapsed)
                if self._index == warmup + steps - 1:
                    self.profiler.__exit__(None, None, None)
            else:
                self.watched_times.append(elapsed)

    window = Window()
    datamodule = make_datamodule(model, batch_size, warmup + 2 * steps + 1, pairs_root)
    make_trainer(warmup + 2 * steps, [window], task.n_critic).fit(task, datamodule=datamodule)
    ours_events = window.profiler.events()
    result["ours"] = {"profiled_step_seconds": window.step_times,
                      "top_ops_by_self_cpu": top_ops(window.profiler, steps), **categorize(ours_events, steps)}
    watched = len(window.watched_times)
    per_step = {k: round(v / watched * 1000, 3) for k, v in sorted(watch.seconds.items(), key=lambda kv: -kv[1])}
    ms = lambda name: per_step.get(name, 0.0)  # noqa: E731
    step_ms = statistics.median(window.watched_times) * 1000
    mean_ms = statistics.mean(window.watched_times) * 1000
    plain_ms = statistics.median(plain_clean) * 1000
    lightning = {
        "toggle_untoggle": ms("toggle_optimizer") + ms("untoggle_optimizer"),
        "logging (log, log_dict)": ms("log") + ms("log_dict"),
        "nonfinite_check (_finite_or_skip)": ms("_finite_or_skip"),
        "on_train_batch_start (reseeding)": ms("on_train_batch_start"),
        "optimizers()": ms("optimizers"),
        "zero_grad + LightningOptimizer.step wrapper (_step - manual_backward - adam_step)":
            ms("_step") - ms("manual_backward") - ms("adam_step"),
        "other hooks in the batch window (window - training_step - on_train_batch_start, means)":
            mean_ms - ms("training_step") - ms("on_train_batch_start"),
    }
    result["lightning_overhead"] = {
        "watched_steps": watched,
        "ours_step_ms_median (watched)": round(step_ms, 1),
        "plain_step_ms_median (same process, unprofiled)": round(plain_ms, 1),
        "difference_ms": round(step_ms - plain_ms, 1),
        "wall_ms_per_step_by_method": per_step,
        "attributed_ms_per_step": {k: round(v, 3) for k, v in lightning.items()},
    }
    return result

