"""What a training run shows on the console: the networks it trains and the progress bar.

`NetworkSummary` replaces Lightning's model summary, whose FLOPs column is 0 for a task
without an `example_input_array` and which lists the metrics beside the networks: one row
per network (generator, discriminator, the moving average of G), its parameters, the
shape of its input and the FLOPs of one forward pass on one training sample, counted by
`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts 2).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelSummary, RichProgressBar
from lightning.pytorch.utilities.model_summary import get_human_readable_count

__all__ = ["NetworkSummary", "ProgressBar", "forward_costs", "network_rows", "one_sample"]

log = logging.getLogger("ganforge")


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar without `v_num` (the tail of the W&B run id)."""

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


def one_sample(datamodule: Any) -> dict[str, torch.Tensor] | None:
    """The first training sample as a batch of one, without starting a loader's workers."""
    if datamodule is None:
        return None
    from torch.utils.data import default_collate

    loader = datamodule.train_dataloader()
    key = next(iter(loader.sampler)) if loader.sampler is not None else 0
    return default_collate([loader.dataset[key]])


def forward_costs(task: Any, batch: dict[str, torch.Tensor]) -> dict[str, tuple[str, int]]:
    """network name -> (input shape, FLOPs of one forward pass) for G and D on `batch`,
    in eval mode (no batch-norm or spectral-norm state changes) and without autograd."""
    from torch.utils.flop_counter import FlopCounterMode

    networks = {"generator": task.generator, "discriminator": task.discriminator}
    shapes: dict[str, str] = {}

    def note_input(name: str) -> Any:
        def hook(module: Any, args: tuple) -> None:  # returns None: the input is left as it is
            if args and torch.is_tensor(args[0]):
                shapes.setdefault(name, "x".join(str(s) for s in args[0].shape))

        return hook

    hooks = [net.register_forward_pre_hook(note_input(name)) for name, net in networks.items()]
    # model.compile: count the eager forward (Module.compile keeps it beside the compiled one)
    compiled = {name: getattr(net, "_compiled_call_impl", None) for name, net in networks.items()}
    modes = {module: module.training for module in task.modules()}
    costs: dict[str, tuple[str, int]] = {}
    try:
        for net in networks.values():
            net._compiled_call_impl = None
        task.eval()  # the task too: e.g. compression counts its symbols only in training
        batch = {k: v.to(task.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            example = task.prepare(batch)
            with FlopCounterMode(display=False) as counter:
                fake = task.generate(example, task.generator)
            costs["generator"] = (shapes.get("generator", "?"), counter.get_total_flops())
            with FlopCounterMode(display=False) as counter:
                task.discriminate(example, fake, task.discriminator)
            costs["discriminator"] = (shapes.get("discriminator", "?"), counter.get_total_flops())
    finally:
        for hook in hooks:
            hook.remove()
        for name, net in networks.items():
            net._compiled_call_impl = compiled[name]
        for module, training in modes.items():
            module.training = training
    return costs


def network_rows(task: Any, batch: dict[str, torch.Tensor] | None) -> list[tuple[str, str, str, str, str]]:
    """(network, type, parameters, input, forward FLOPs) for each network of `task`."""
    costs: dict[str, tuple[str, int]] = {}
    if batch is not None:
        try:
            costs = forward_costs(task, batch)
        except Exception as error:  # a summary must never stop a run
            log.warning("model summary: could not count FLOPs (%s)", error)
    rows = []
    networks = [("generator", task.generator), ("discriminator", task.discriminator)]
    if getattr(task, "generator_ema", None) is not None:
        networks.append(("generator EMA", task.generator_ema))
    for name, net in networks:
        shape, flops = costs.get(name.split(" ")[0], ("-", None))
        count = sum(p.numel() for p in net.parameters())
        rows.append((name, type(net).__name__, get_human_readable_count(count), shape,
                     get_human_readable_count(flops) if flops is not None else "-"))
    return rows


class NetworkSummary(ModelSummary):
    """At the start of training, on the first process: a table of the task's networks
    (parameters, input shape, forward FLOPs for one training sample) and one line with the
    trained parameters, their size, the device and the precision. `max_depth=0` turns it off.
    """

    def __init__(self, max_depth: int = 1) -> None:
        super().__init__(max_depth=max_depth)
        self._shown = False

    # Once, before the first of train.py's validation of the untrained model and training.
    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.state.fn == "validate":
            self.show(trainer, pl_module)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.show(trainer, pl_module)

    def show(self, trainer: Any, pl_module: Any) -> None:
        if self._shown or not self._max_depth or not trainer.is_global_zero:
            return
        self._shown = True
        try:
            batch = one_sample(trainer.datamodule)
        except Exception as error:
            log.warning("model summary: no training sample to count FLOPs on (%s)", error)
            batch = None
        rows = network_rows(pl_module, batch)
        trained = sum(p.numel() for net in (pl_module.generator, pl_module.discriminator) for p in net.parameters()
                      if p.requires_grad)
        size_mb = sum(p.numel() * p.element_size() for p in pl_module.parameters()) / 1e6
        footer = (f"trained parameters: {get_human_readable_count(trained)} · weights {size_mb:.3g} MB · "
                  f"{pl_module.device} · {trainer.precision}")
        caption = "input and FLOPs: one forward pass on one training sample"
        header = ("network", "type", "params", "input", "FLOPs")
        log.info("\n".join(["  ".join(header), *("  ".join(row) for row in rows), caption, footer]))
        try:
            from rich import get_console
            from rich.table import Table
        except ImportError:
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
            for row in [header, *rows]:
                print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
            print(caption)
            print(footer)
            return
        table = Table(header_style="bold magenta", caption=caption)
        for index, title in enumerate(header):
            table.add_column(title, justify="right" if index >= 2 else "left")
        for row in rows:
            table.add_row(*row)
        console = get_console()
        console.print(table)
        console.print(footer)
