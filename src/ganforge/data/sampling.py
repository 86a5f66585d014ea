"""Training data order that a killed run can resume exactly.

`EpochSampler` yields `(epoch, index)` keys in an order that is a function of
(seed, epoch) alone; the datasets draw each sample's randomness from (seed, epoch, index)
(see ganforge.data.datasets). `ResumableDataLoader` tells Lightning how far the current
epoch got (it is saved in every checkpoint) and, when a run resumes, starts the epoch at
the next unseen batch. Together they make the batches after a resume the ones the
uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
from torch.utils.data import DataLoader, Sampler

__all__ = ["EpochSampler", "ResumableDataLoader"]


class EpochSampler(Sampler):
    """`(epoch, index)` for every index of a dataset of `length`, shuffled per epoch with
    `shuffle` (a permutation seeded by (seed, epoch)), in order otherwise.

    Data parallel training: process `rank` of `replicas` takes every `replicas`-th key of
    the epoch's order, starting at its rank; each gets length // replicas keys, so all
    take the same number of steps (the last keys of an epoch that does not divide are left
    out). A key's randomness does not depend on which process draws it, so the samples of
    an epoch are those of a single-process run.

    Lightning calls `set_epoch` at the start of each epoch. `resume_at(epoch, samples)`
    makes the next pass over `epoch` skip the first `samples` keys of this process.
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = False, replicas: int = 1, rank: int = 0) -> None:
        if not 0 <= rank < replicas:
            raise ValueError(f"rank {rank} is not one of {replicas} processes")
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.replicas, self.rank = replicas, rank
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, samples: int) -> None:
        self._resume = (epoch, samples)

    def __len__(self) -> int:
        return self.length // self.replicas

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # A generator: the epoch and the resume point are read at the first next(), after
        # Lightning has set the epoch, not when DataLoader builds its iterator.
        epoch = self.epoch
        order = np.random.default_rng((self.seed, epoch)).permutation(self.length) if self.shuffle else range(self.length)
        mine = list(order)[self.rank :: self.replicas][: len(self)]
        start = 0
        if self._resume is not None and self._resume[0] == epoch:
            start = self._resume[1]
        self._resume = None
        for index in mine[start:]:
            yield epoch, int(index)


class ResumableDataLoader(DataLoader):
    """A DataLoader over an `EpochSampler` whose position Lightning checkpoints.

    progress: returns (epoch, batches of that epoch already trained on); the datamodule
    reads it from the trainer, because the loader itself runs ahead (prefetching,
    workers) of the batches actually consumed.
    """

    def __init__(self, *args: Any, progress: Callable[[], tuple[int, int]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self.progress() if self.progress is not None else (0, 0)
        return {"epoch": int(epoch), "batches": int(batches)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler = self.batch_sampler.sampler if self.batch_sampler is not None else self.sampler
        if isinstance(sampler, EpochSampler):
            sampler.resume_at(state["epoch"], state["batches"] * (self.batch_size or 1))
