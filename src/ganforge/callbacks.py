"""Lightning callbacks: sample image grids written as PNG and sent to the loggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning as L
import numpy as np
import torch
from PIL import Image

from ganforge.compat import batches_that_stepped

__all__ = ["SampleGrid", "image_grid"]


def image_grid(rows: Sequence[torch.Tensor], padding: int = 2) -> np.ndarray:
    """Tile images: column j of the grid is example j, row i is rows[i] (e.g. input,
    output, target). Each row is RGB in [0, 1], (N, 3, H, W); returns uint8 (H', W', 3)
    with white padding."""
    count, _, height, width = rows[0].shape
    grid = np.full(
        (len(rows) * (height + padding) + padding, count * (width + padding) + padding, 3), 255, np.uint8
    )
    for i, row in enumerate(rows):
        pixels = (row.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for j in range(count):
            top, left = padding + i * (height + padding), padding + j * (width + padding)
            grid[top : top + height, left : left + width] = pixels[j]
    return grid


class SampleGrid(L.Callback):
    """Every `every_n_steps` training batches, and at the end of training, run the
    generator in eval mode on the first `num_images` validation examples and write
    ``dirpath/step_<batches done>.png`` (rows: input | output | target); the image also
    goes to the W&B or TensorBoard logger when one is active."""

    def __init__(self, dirpath: str, every_n_steps: int = 100, num_images: int = 8) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.num_images = num_images
        self._batch: Mapping[str, torch.Tensor] | None = None
        self._last_written = -1

    def _fixed_batch(self, trainer: L.Trainer) -> Mapping[str, torch.Tensor] | None:
        if self._batch is None:
            loaders = trainer.datamodule.val_dataloader() if trainer.datamodule is not None else None
            if loaders is None:
                return None
            examples = [loaders.dataset[i] for i in range(min(self.num_images, len(loaders.dataset)))]
            # Whole validation images may differ in size: a grid takes those shaped like the first.
            first = {key: value.shape for key, value in examples[0].items()}
            examples = [e for e in examples if {key: value.shape for key, value in e.items()} == first]
            self._batch = {key: torch.stack([e[key] for e in examples]) for key in examples[0]}
        return self._batch

    def write(self, trainer: L.Trainer, task: Any, step: int) -> Path | None:
        """Write the grid for `step` training batches done (once per step, on rank 0)."""
        if step == self._last_written or not trainer.is_global_zero:
            return None
        batch = self._fixed_batch(trainer)
        if batch is None:
            return None
        batch = {key: value.to(task.device) for key, value in batch.items()}
        was_training = task.training
        task.eval()
        try:
            rows = task.sample_images(batch)
        finally:
            task.train(was_training)
        grid = image_grid(list(rows.values()))
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"step_{step:06d}.png"
        Image.fromarray(grid).save(path)
        self._last_written = step
        caption = " | ".join(rows)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):  # W&B: the PNG file itself, not a re-encoding of the array
                logger.log_image(key="samples", images=[str(path)], step=step, caption=[caption])
            elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
                logger.experiment.add_image("samples", grid, global_step=step, dataformats="HWC")
        return path

    def on_train_batch_end(self, trainer: L.Trainer, task: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Lightning counts this batch only after the hook: done = counter + 1.
        done = batches_that_stepped(trainer) + 1
        if self.every_n_steps > 0 and done % self.every_n_steps == 0:
            self.write(trainer, task, done)

    def on_train_end(self, trainer: L.Trainer, task: Any) -> None:
        self.write(trainer, task, batches_that_stepped(trainer))
