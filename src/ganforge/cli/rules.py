"""The ranges and choices a config value must keep beyond its type annotation, by the
class that takes it: what Lightning 2.6 accepts (read from its code, cited per entry) and
what ganforge's own callbacks need. `ganforge.cli.schema` applies them; a subclass gets its
bases' rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

__all__ = ["RULES", "Rule"]


@dataclass(frozen=True)
class Rule:
    """need: what the value must be, in words ("an integer >= -1"); ok: the test (applied
    to values of the right type); names: the names a string may take, for "did you mean"
    (a function: the registries behind some of them import Lightning)."""

    need: str
    ok: Callable[[Any], bool]
    names: Callable[[], tuple[str, ...]] = tuple

    @property
    def choices(self) -> tuple[str, ...]:
        return self.names()


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _node(value: Any) -> bool:
    return isinstance(value, dict) and "_target_" in value


def at_least(minimum: int, also: str = "") -> Rule:
    return Rule(f"an integer >= {minimum}{also}", lambda v: _int(v) and v >= minimum)


def named(what: str, names: tuple[str, ...] | Callable[[], tuple[str, ...]], node: bool = True) -> Rule:
    """A name from `names` (a tuple, or a function giving one) or, with `node`, a node with `_target_`."""
    choices = lru_cache(maxsize=None)(names if callable(names) else lambda: names)
    return Rule(
        need=f"one of {what}" + (" or a node with _target_" if node else ""),
        ok=lambda v: (isinstance(v, str) and v.lower() in choices()) or (node and _node(v)),
        names=choices,
    )


# Lightning's _determine_batch_limits (trainer/setup.py): an int counts batches, a float
# in [0, 1] is a fraction; a float above 1 must be whole.
FRACTION = Rule("an integer >= 0 (batches) or a number in [0, 1] (a fraction)",
                lambda v: (_int(v) and v >= 0) or (_number(v) and 0 <= v <= 1))
_TIME = re.compile(r"^\d+:\d{1,2}:\d{1,2}:\d{1,2}$")  # DD:HH:MM:SS (Lightning's Timer)


def _accelerators() -> tuple[str, ...]:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    return ("auto", "gpu", *AcceleratorRegistry.available_accelerators())


def _strategies() -> tuple[str, ...]:
    from lightning.pytorch.strategies import StrategyRegistry

    return ("auto", *StrategyRegistry.available_strategies())


def _devices(value: Any) -> bool:
    # Lightning's device parsing: an int > 0 or -1 (all), "auto", "-1", "0,1", or a list of indices.
    if _int(value):
        return value >= 1 or value == -1
    if isinstance(value, str):
        return value == "auto" or bool(re.fullmatch(r"-1|\d+|(\d+,)+\d*", value.replace(" ", "")))
    return isinstance(value, list) and bool(value) and all(_int(v) and v >= 0 for v in value)


RULES: dict[str, dict[str, Rule]] = {
    "lightning.pytorch.trainer.trainer.Trainer": {
        "accelerator": named("auto, cpu, gpu, cuda, mps, tpu", _accelerators),
        "strategy": named("auto, ddp, ... (Lightning's StrategyRegistry)", _strategies),
        "devices": Rule("an integer >= 1, -1 (every device), auto, or a list of device indices", _devices),
        "num_nodes": at_least(1),  # _AcceleratorConnector: "num_nodes must be a positive integer"
        "fast_dev_run": Rule("true, false or an integer >= 0 (batches)", lambda v: isinstance(v, bool) or (_int(v) and v >= 0)),
        "max_epochs": at_least(-1),  # _FitLoop: "a non-negative integer or -1"
        "min_epochs": at_least(0),
        "max_steps": at_least(-1),  # _TrainingEpochLoop: -1 = no limit
        "min_steps": at_least(0),
        "max_time": Rule("a time DD:HH:MM:SS or a mapping such as {hours: 2}",
                         lambda v: (isinstance(v, str) and bool(_TIME.match(v))) or isinstance(v, dict)),
        "limit_train_batches": FRACTION,
        "limit_val_batches": FRACTION,
        "limit_test_batches": FRACTION,
        "limit_predict_batches": FRACTION,
        "overfit_batches": FRACTION,
        "val_check_interval": Rule(
            "an integer >= 1 (batches), a number in (0, 1] (a fraction of the epoch) or a time DD:HH:MM:SS",
            lambda v: (_int(v) and v >= 1) or (_number(v) and 0 < v <= 1) or (isinstance(v, str) and bool(_TIME.match(v)))
            or isinstance(v, dict)),
        "check_val_every_n_epoch": at_least(1),
        "num_sanity_val_steps": at_least(-1, " (-1: the whole validation set)"),
        # 0 is Lightning's "never log steps" (what barebones sets); -1 would log every step.
        "log_every_n_steps": at_least(0, " (0: no step logging)"),
        # ganforge's GAN loop steps both optimizers itself (manual optimization): Lightning
        # refuses to accumulate or to clip there (configuration_validator.py).
        "accumulate_grad_batches": Rule("1 (ganforge's D/G loop steps its optimizers itself: raise data.batch_size "
                                        "instead)", lambda v: v == 1),
        "gradient_clip_val": Rule("null (Lightning cannot clip in ganforge's D/G loop: use model.grad_clip.value)",
                                  lambda v: v is None),
        "gradient_clip_algorithm": Rule("null (use model.grad_clip.algorithm)", lambda v: v is None),
        "reload_dataloaders_every_n_epochs": at_least(0),
        # Lightning's _init_profiler: these names, or a Profiler.
        "profiler": named("simple, advanced, pytorch, xla", ("simple", "advanced", "pytorch", "xla")),
    },
    "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint": {
        "save_top_k": at_least(-1, " (-1: every checkpoint)"),
        "every_n_train_steps": at_least(0),
        "every_n_epochs": at_least(0),
        "mode": named("min, max", ("min", "max"), node=False),
    },
    "lightning.pytorch.callbacks.progress.rich_progress.RichProgressBar": {"refresh_rate": at_least(0)},
    "lightning.pytorch.callbacks.progress.tqdm_progress.TQDMProgressBar": {"refresh_rate": at_least(0)},
    "lightning.pytorch.callbacks.model_summary.ModelSummary": {"max_depth": at_least(-1, " (-1: every layer)")},
    "lightning.fabric.loggers.csv_logs.CSVLogger": {"flush_logs_every_n_steps": at_least(1)},
    "lightning.pytorch.loggers.csv_logs.CSVLogger": {"flush_logs_every_n_steps": at_least(1)},
    "ganforge.checkpoint.LastCheckpoint": {"every_n_batches": at_least(0, " (0: only after validation, at the end "
                                                                           "and on SIGTERM)")},
    "ganforge.callbacks.SampleGrid": {"every_n_steps": at_least(0, " (0: only at the end)"),
                                      "num_images": at_least(1)},
}
