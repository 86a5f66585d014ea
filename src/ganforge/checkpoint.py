"""Checkpoints: read safely, written atomically, and saved when a run is stopped.

Reading: a checkpoint is a file users download from strangers, so it is always read with
``torch.load(..., weights_only=True)``: tensors, numbers, strings and containers are
restored, and nothing in the file can make Python run code. A task is rebuilt from the
hyper-parameters saved in it (plain values), never from a pickled object. Lightning's own
resume (``trainer.fit(ckpt_path=...)``) goes through `AtomicCheckpointIO`, which reads
the same way.

Writing: `AtomicCheckpointIO` writes to a temporary file beside the target and renames
it, so a kill during a save leaves the previous file whole. (Lightning's default writer
stages the file in /tmp and moves it, which is a copy, not a rename, when /tmp is
another file system.) `LastCheckpoint` keeps <run>/checkpoints/last.ckpt current: every
N training batches, after each validation, at the end, and when SIGTERM or Ctrl-C stops
the run.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ganforge.atomic import save_torch_atomically
from ganforge.compat import batches_that_stepped, request_stop_after_batch
from ganforge.errors import UserError, user_message

__all__ = [
    "AtomicCheckpointIO",
    "LastCheckpoint",
    "checkpoint_family",
    "load_task",
    "read_checkpoint",
]


def _families():
    """The registered model families (importing the tasks registers them)."""
    import ganforge.tasks  # noqa: F401  (registers every family)
    from ganforge.tasks.registry import FAMILIES

    return FAMILIES


def _load_weights_only(path, map_location: Any = "cpu") -> Any:
    """torch.load with weights_only=True; a damaged or code-carrying file -> one UserError."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # a truncated zip, a pickle with code in it, not a checkpoint at all
        raise UserError(
            f"cannot read checkpoint {path} ({user_message(error)}): the file is damaged or not a checkpoint"
        ) from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dictionary, loaded on the CPU with weights_only=True.

    Raises a UserError naming the file for a missing, truncated or foreign file.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder: pass a checkpoint file such as {path}/checkpoints/last.ckpt")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    checkpoint = _load_weights_only(path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserError(f"{path} is not a Lightning checkpoint (no state_dict): pass a .ckpt written by ganforge train")
    return checkpoint


def checkpoint_family(checkpoint: dict[str, Any]) -> str | None:
    """The model family that wrote the checkpoint ('pix2pix', 'compression', ...), or None.

    Checkpoints name it (``checkpoint["ganforge"]["family"]``, see ganforge.tasks.registry);
    older ones are recognised by their hyper-parameters."""
    from ganforge.tasks.registry import guess_family

    named = (checkpoint.get("ganforge") or {}).get("family")
    if isinstance(named, str):
        return named
    return guess_family(checkpoint.get("hyper_parameters") or {})


def load_task(path: str | Path, family: str | None = None):
    """The task a checkpoint was written by, with its trained weights, in eval mode.

    family: require this model family ('pix2pix', 'compression', ...); None accepts any.
    The generator's moving average (model.ema_decay), when the checkpoint has one, is
    loaded too and is what `task.inference_generator` returns.
    """
    checkpoint = read_checkpoint(path)
    found = checkpoint_family(checkpoint)
    families = _families()
    if found is None:
        raise UserError(f"{path} was not written by a ganforge model (no model hyper-parameters in it)")
    if found not in families:
        raise UserError(f"{path} is a {found!r} checkpoint, a model family this ganforge does not have "
                        f"({', '.join(families)}): use the ganforge version that wrote it")
    if family is not None and found != family:
        raise UserError(f"{path} is a {found} checkpoint; this command needs a {family} one "
                        f"({families[family].trained_by})")
    task_class = families[found].task_class
    try:
        task = task_class(**checkpoint["hyper_parameters"])
        task.setup("predict")
        task.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, ValueError, KeyError) as error:
        first_line = user_message(error)
        raise UserError(f"{path} does not match the {found} model it names ({first_line}): the file is damaged") from None
    return task.eval()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer and reader, made atomic and safe.

    save: torch.save into a temporary file in the target's folder, flush it to disk, then
    os.replace it over the target: readers see the old file or the new one, never half.
    load: weights_only=True (see the module docstring); Lightning's checkpoints hold only
    tensors and plain values, so nothing needs a full unpickle.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        save_torch_atomically(checkpoint, path)

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return _load_weights_only(path, map_location or "cpu")


class LastCheckpoint(L.Callback):
    """Keeps `dirpath`/last.ckpt current, so a run killed at any moment loses at most
    `every_n_batches` training batches: it is written every `every_n_batches` training
    batches (0 = never), after each validation during training, at the end, and when
    SIGTERM or Ctrl-C stops the run.

    SIGTERM (a cluster's time limit, `kill`) and the first Ctrl-C ask Lightning to stop
    after the current batch, so the saved state is between two batches, never half way
    through one; a second Ctrl-C stops at once without saving. The handlers only note the
    request; at the end of each training batch the processes of a data parallel run agree
    on it (one all-reduce), so all of them stop after the same batch. (Lightning's own
    SIGTERM handler broadcasts from inside the handler, at whatever point each process
    is, which can pair with another collective and hang the run.)
    """

    def __init__(self, dirpath: str | Path, filename: str = "last.ckpt", every_n_batches: int = 100) -> None:
        from ganforge.checks import check_int

        self.path = Path(dirpath) / filename
        self.every_n_batches = check_int("callbacks.last_checkpoint.every_n_batches", every_n_batches, 0)
        self.interrupted_by: str | None = None
        self._previous: dict[int, Any] = {}  # signal -> the handler before ours
        self._saved_at_step = -1

    def save(self, trainer: L.Trainer) -> None:
        if trainer.fast_dev_run:  # a smoke test saves nothing, as Lightning's ModelCheckpoint does
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_at_step = trainer.global_step

    # After Lightning has installed its handlers (it does so after setup and on_fit_start).
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[number] = signal.signal(number, self._handler)
            except ValueError:  # not the main thread: leave the signals alone
                return

    def _handler(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.interrupted_by is not None:  # the second Ctrl-C: stop now
            self._restore_handlers()
            raise KeyboardInterrupt
        self.interrupted_by = self.interrupted_by or signal.Signals(signum).name
        if signum == signal.SIGINT:
            print("\nstopping after this batch (press Ctrl-C again to stop at once) ...", flush=True)

    def _restore_handlers(self) -> None:
        for number, previous in self._previous.items():
            if signal.getsignal(number) == self._handler:  # Lightning may have restored its own already
                signal.signal(number, previous)
        self._previous = {}

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore_handlers()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        requested = self.interrupted_by is not None
        if trainer.world_size > 1:
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        if requested:
            self.interrupted_by = self.interrupted_by or "SIGTERM"
            request_stop_after_batch(trainer)
        # Lightning counts this batch only after the hook: done = counter + 1.
        done = batches_that_stepped(trainer) + 1
        if self.every_n_batches and done % self.every_n_batches == 0:
            self.save(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        # Usually the last validation has just saved this state; then keep that file.
        if trainer.global_step != self._saved_at_step:
            self.save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # Lightning raises SIGTERMException between batches, so the state is whole. Other
        # exceptions (a non-finite loss, a bug) leave the last good checkpoint as it is.
        if isinstance(exception, SIGTERMException):
            self.interrupted_by = self.interrupted_by or "SIGTERM"
            self.save(trainer)
