"""A callback for the data parallel tests: every process of a run writes what it trained
on and what it ended with to `<dirpath>/rank<global rank>.pt`.

    {"rank", "world_size", "initial": state dict before the first step,
     "final": state dict after training, "batches": a fingerprint of every training batch,
     "samples_written": the last step this process's SampleGrid wrote a grid for (-1: none),
     "wrapped": "networks" (a DistributedDataParallel per network), "task" (one around the
     whole task) or None}

Added with `+callbacks.probe._target_=tests.ddp_probe.RankProbe +callbacks.probe.dirpath=...`;
the extra processes import it too, since Lightning starts them in the repository root.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import torch


def _copy(state: dict) -> dict:
    return {key: value.detach().cpu().clone() for key, value in state.items()}


class RankProbe(L.Callback):
    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.initial: dict | None = None
        self.batches: list[str] = []
        self.wrapped: str | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.initial = _copy(pl_module.state_dict())
        self.wrapped = ("networks" if pl_module.replicas.wrappers() else
                        "task" if isinstance(trainer.strategy.model, DistributedDataParallel) else None)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        digest = hashlib.sha256()
        for key in sorted(batch):
            digest.update(batch[key].cpu().numpy().tobytes())
        self.batches.append(digest.hexdigest())

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        from ganforge.callbacks import SampleGrid

        grids = [c._last_written for c in trainer.callbacks if isinstance(c, SampleGrid)]
        record = {"rank": trainer.global_rank, "world_size": trainer.world_size, "initial": self.initial,
                  "final": _copy(pl_module.state_dict()), "batches": self.batches,
                  "samples_written": grids[0] if grids else None, "wrapped": self.wrapped}
        torch.save(record, self.dirpath / f"rank{trainer.global_rank}.pt")
