"""Every use of Lightning's and torch's private names, in one place.

ganforge needs a few things the libraries do not offer publicly (asking Lightning to stop
after the current batch, the count of batches that stepped, whether this batch's metrics
reach the loggers, torch's test for a fused Adam kernel, ...). They are wrapped here, each
with a fallback where one makes sense, and tests/test_compat.py checks that every one of
them still exists and behaves, so that a Lightning or torch upgrade that moves one breaks
that named test instead of, say, SIGTERM handling in a run.

The classes ganforge subclasses (`SubprocessScriptLauncher`, Lightning's DDPStrategy)
override private methods; `PRIVATE_OVERRIDES` lists them for the same test.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PRIVATE_OVERRIDES",
    "SubprocessScriptLauncher",
    "attached_trainer",
    "batches_ready_in_epoch",
    "batches_that_stepped",
    "compile_backends",
    "ddp_kwargs",
    "fused_adam_supported",
    "logs_due",
    "request_stop_after_batch",
    "sync_module_states",
]

from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

# The launcher that GANDDPStrategy's HydraJobLauncher extends.
SubprocessScriptLauncher = _SubprocessScriptLauncher

# (Lightning class, private attribute ganforge overrides or reads) for tests/test_compat.py.
PRIVATE_OVERRIDES = (
    ("lightning.pytorch.strategies.DDPStrategy", "_configure_launcher"),
    ("lightning.pytorch.strategies.DDPStrategy", "_start_method"),
    ("lightning.pytorch.strategies.DDPStrategy", "_ddp_kwargs"),
    ("lightning.pytorch.strategies.launchers.subprocess_script._SubprocessScriptLauncher", "_call_children_scripts"),
    ("lightning.pytorch.strategies.launchers.subprocess_script._SubprocessScriptLauncher", "_check_can_spawn_children"),
    ("lightning.pytorch.strategies.launchers.subprocess_script._SubprocessScriptLauncher", "procs"),
)


def sync_module_states(module: Any) -> None:
    """Broadcast `module`'s parameters and buffers from rank 0 (what DDP does on wrapping)."""
    _sync_module_states(module)


def ddp_kwargs(strategy: Any) -> dict[str, Any]:
    """The keyword arguments a DDPStrategy passes to DistributedDataParallel."""
    return dict(strategy._ddp_kwargs)


def attached_trainer(module: Any) -> Any | None:
    """The Trainer a LightningModule is attached to, or None (`module.trainer` raises then)."""
    return getattr(module, "_trainer", None)


def batches_that_stepped(trainer: Any) -> int:
    """Training batches done in the run, as Lightning counts them for logging and
    checkpoints (inside on_train_batch_end, the current batch is not counted yet)."""
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


def batches_ready_in_epoch(trainer: Any) -> int:
    """Training batches of the current epoch that Lightning has fetched and trained on."""
    return int(trainer.fit_loop.epoch_loop.batch_progress.current.ready)


def request_stop_after_batch(trainer: Any) -> None:
    """Make Lightning stop after the current batch as it does on SIGTERM: it raises
    SIGTERMException between batches, which LastCheckpoint saves on."""
    trainer._signal_connector.received_sigterm = True


def logs_due(trainer: Any) -> bool | None:
    """Whether the metrics logged in this training batch reach the loggers (every
    trainer.log_every_n_steps batches, and when the run is stopping); None when this
    Lightning does not say (callers then log every batch)."""
    connector = getattr(trainer, "_logger_connector", None)
    if connector is None or not hasattr(connector, "should_update_logs"):
        return None
    return bool(connector.should_update_logs)


def fused_adam_supported(parameters: list[Any]) -> bool:
    """Whether torch has a fused Adam kernel for all of `parameters` (device and dtype)."""
    try:
        from torch.optim.optimizer import _default_to_fused_or_foreach
    except ImportError:  # a torch without the helper: do without fusing
        return False
    return bool(parameters) and _default_to_fused_or_foreach(parameters, differentiable=False, use_fused=True)[0]


def compile_backends() -> list[str]:
    """The names torch.compile accepts as a backend."""
    import torch._dynamo

    return list(torch._dynamo.list_backends(exclude_tags=()))
