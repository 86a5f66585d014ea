"""What keeps a run repeatable and honest: re-seeding before each batch, and the guard
against a loss that became NaN or infinite (trainer_guard.on_nonfinite)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ganforge.compat import attached_trainer
from ganforge.errors import NonFiniteLossError

__all__ = ["NonFiniteGuard", "reseed_for_batch"]


def reseed_for_batch(rank: int, epoch: int, batch: int) -> None:
    """Seed torch's global generator from (seed, rank, epoch, batch), so the randomness
    inside a step (dropout, noise, latent codes, a penalty's mixing, augmentation) repeats
    when a run resumes. The seed is PL_GLOBAL_SEED, which train.py's seed_everything(cfg.seed)
    sets."""
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    key = (seed, rank, epoch, batch)
    torch.manual_seed(int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> 1))


class NonFiniteGuard:
    """`on_nonfinite` "stop" raises NonFiniteLossError when a loss is NaN or infinite,
    before any weight changes; "skip" tells the loop to skip that network's step and
    counts it (`skips`, logged as train/nonfinite_skips and kept in the checkpoint)."""

    def __init__(self, on_nonfinite: str = "stop") -> None:
        self.on_nonfinite = on_nonfinite
        self.skips = 0

    def finite_or_skip(self, task: Any, name: str, loss: torch.Tensor) -> bool:
        """True when `loss` is finite on every process; otherwise stop or count a skip."""
        finite = bool(torch.isfinite(loss).all())
        trainer = attached_trainer(task)
        if trainer is not None:
            finite = trainer.strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            return True
        if self.on_nonfinite == "skip":
            self.skips += 1
            task.log("train/nonfinite_skips", float(self.skips))
            return False
        value = loss.detach().float().cpu()
        shown = "NaN" if bool(torch.isnan(value).any()) else "infinite"
        batch = trainer.fit_loop.epoch_loop.batch_idx if trainer is not None else "?"
        raise NonFiniteLossError(
            f"train/{name} became {shown} at step {task.global_step} (epoch {task.current_epoch}, batch "
            f"{batch}): training stopped before changing the weights; lower the learning rates "
            "(model.optim.lr_g / lr_d), clip gradients (model.grad_clip.value=1), or skip such steps with "
            "trainer_guard.on_nonfinite=skip"
        )
