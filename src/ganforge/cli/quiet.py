"""What a run prints before its first step: only what ganforge wants a user to see.

Each message silenced here is silenced by its own text, where it comes from (Lightning
2.6, W&B 0.31); warnings that signal a real problem are left alone. Settings that avoid a
message are in conf/ instead: Lightning's "`Trainer(limit_train_batches=1.0)` was
configured so ..." only appears for a value given explicitly (conf/trainer leaves the
limits null), "Trainer already configured with model summary callbacks" only with
enable_model_summary=true beside a summary callback (conf/trainer sets it false: the
summary is callbacks.model_summary), and W&B's banner is off in offline runs
(conf/logger/wandb.yaml: settings.silent).
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any, Iterable

__all__ = ["CONSOLE_ONLY", "EVERYWHERE", "quiet_console", "quiet_csv_logger"]

# Lightning's info records (logger lightning.pytorch.utilities.rank_zero), dropped everywhere:
EVERYWHERE = (
    # Advertisements: for litlogger (trainer/connectors/logger_connector/logger_connector.py,
    # every run) and litmodels (trainer/connectors/callback_connector.py, without a ModelCheckpoint).
    "💡 Tip:",
)
# ... and dropped from the console only (train.log keeps them):
CONSOLE_ONLY = (
    # lightning/pytorch/trainer/setup.py, _log_device_info: the device a run uses is in
    # ganforge's model summary; "GPU available but not used" (a warning) still shows.
    "GPU available:",
    "TPU available:",
)


class _DropMessages(logging.Filter):
    def __init__(self, starts: Iterable[str]) -> None:
        super().__init__()
        self.starts = tuple(starts)

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.starts)


def _attach(target: Any, starts: Iterable[str]) -> None:
    if not any(isinstance(f, _DropMessages) for f in target.filters):
        target.addFilter(_DropMessages(starts))


def _propagate_lightning_records() -> None:
    """lightning.pytorch and lightning.fabric give themselves a stderr handler and stop
    their records from reaching the root logger when the root has no handler at their
    import. ganforge imports them before Hydra configures logging (to check the config),
    so once the root has a handler (Hydra's train.log), do what they would have done."""
    if not logging.getLogger().hasHandlers():
        return
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        if logger.propagate:
            continue
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


def quiet_console() -> None:
    """Install the filters (idempotent)."""
    _propagate_lightning_records()
    # On a CPU the in-memory sample data needs no workers; the hint would only confuse.
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*")
    # Data parallel: the validation metrics are torchmetrics, which gather every process's
    # state before computing; the values logged are already those of the whole set.
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
    # trainer.overfit_batches: Lightning swaps any sampler that is not a SequentialSampler for
    # one (trainer/connectors/data_connector.py, _resolve_overfit_batches) and says shuffling
    # was on; ganforge's EpochSampler does not shuffle crops, and the swap is what overfitting
    # wants (the same crops every epoch).
    warnings.filterwarnings("ignore", message=r"You requested to overfit but enabled train dataloader shuffling")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        _attach(logging.getLogger(name), EVERYWHERE)
    # lightning/__init__.py gives the "lightning" logger a stderr handler ("INFO: ..."), and
    # lightning/pytorch/__init__.py gives "lightning.pytorch" one when the root has none.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                _attach(handler, CONSOLE_ONLY)


def quiet_csv_logger(loggers: Iterable[Any]) -> None:
    """Lightning's CSVLogger warns "Experiment logs directory <dir> exists and is not empty.
    Previous log files in this directory will be deleted ..." whenever its folder holds any
    file (lightning/fabric/loggers/csv_logs.py, _check_log_dir_exists), and the run folder
    always does (.hydra, train.log); it deletes only a metrics.csv. Silence it for each
    CSV logger whose folder has no metrics.csv; where one exists, the warning is true."""
    from lightning.pytorch.loggers import CSVLogger

    for logger in loggers:
        if isinstance(logger, CSVLogger) and not (Path(logger.log_dir) / "metrics.csv").exists():
            warnings.filterwarnings("ignore", message=re.escape(f"Experiment logs directory {logger.log_dir} exists "
                                                                "and is not empty."))
