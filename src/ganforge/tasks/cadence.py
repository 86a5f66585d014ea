"""When the train losses go to Lightning: only on the batches whose step metrics reach the
loggers (every trainer.log_every_n_steps batches), and on the first and last batch of each
epoch; `self.log` on the other batches cost about 7 ms per step for nothing."""

from __future__ import annotations

from typing import Any

import torch

from ganforge.compat import logs_due

__all__ = ["TrainLogCadence"]


class TrainLogCadence:
    """Holds the latest value of every train loss of the epoch and says which batches log."""

    def __init__(self) -> None:
        self._latest: tuple[Any, dict[str, torch.Tensor]] = (None, {})

    def latest(self, trainer: Any, epoch: int, logs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`logs` over the latest value of every train loss logged earlier in this epoch: what
        Lightning would hold had every batch been logged (with n_critic > 1, G's losses come
        from its last step), so the loggers get the same numbers."""
        key = (id(trainer), epoch)
        if self._latest[0] != key:
            self._latest = (key, {})
        self._latest[1].update(logs)
        return dict(self._latest[1])

    @staticmethod
    def due(trainer: Any, batch_idx: int) -> bool:
        """Whether this batch's train losses go to Lightning: on the batches whose step
        metrics Lightning hands to the loggers (every trainer.log_every_n_steps batches, and
        when the run is stopping); on the last batch of an epoch or of the run, so that
        callback_metrics (train.py's summary, callbacks) hold the latest losses; and on the
        first batch of an epoch, so that the progress bar has numbers from the start (and
        Lightning's one-time set-up of each logged key, ~15 ms, falls on the first batch).
        The progress bar shows the values of the last such batch."""
        if trainer is None:
            return True
        due = logs_due(trainer)
        if trainer.fast_dev_run or due is None or due:
            return True
        if batch_idx == 0 or batch_idx + 1 >= trainer.num_training_batches:
            return True
        return 0 <= trainer.max_steps <= trainer.global_step
