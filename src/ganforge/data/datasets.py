"""Datasets of image crops. Every item is a dict of float tensors (3, H, W) in [0, 1]:
``{"image": ...}`` for single images, ``{"input": ..., "target": ...}`` for aligned pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ganforge.errors import ConfigError, DataError
from ganforge.data.images import image_size, load_rgb, resize

__all__ = ["ImageSource", "SampleKey", "RandomCropDataset", "GridCropDataset", "FullImageDataset", "AlignedPairDataset",
           "to_tensor"]

# An image in memory (uint8 (H, W, 3)) or a file read on demand.
ImageSource = Union[np.ndarray, Path]
# What a training set is indexed with: (epoch, index) from ganforge.data.sampling's
# EpochSampler, or a plain index (epoch 0).
SampleKey = Union[int, Tuple[int, int]]


def _random_for(seed: int, key: SampleKey) -> np.random.Generator:
    """The random stream of one training sample: a function of (seed, epoch, index) alone,
    so a sample is the same whichever worker makes it and after a resume."""
    epoch, index = (0, key) if isinstance(key, (int, np.integer)) else key
    return np.random.default_rng((seed, int(epoch), int(index)))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float32 (C, H, W) in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)


class _Images:
    """Images by index, scaled by `scale`, from memory or from disk."""

    def __init__(self, sources: Sequence[ImageSource], names: Sequence[str], scale: float) -> None:
        if not sources:
            raise DataError("no images to build a dataset from")
        self.sources, self.names, self.scale = list(sources), list(names), scale
        self._memory = [resize(s, scale) if isinstance(s, np.ndarray) else None for s in self.sources]

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> np.ndarray:
        image = self._memory[index]
        return image if image is not None else resize(load_rgb(self.sources[index]), self.scale)

    def check_fits(self, index: int, size: tuple[int, int], crop: tuple[int, int]) -> None:
        """`size` and `crop` are (height, width), the size after scaling."""
        if size[0] < crop[0] or size[1] < crop[1]:
            shown = crop[0] if crop[0] == crop[1] else list(crop)
            raise DataError(
                f"image {self.names[index]} is {size[1]}x{size[0]} after data.scale={self.scale}, smaller than "
                f"data.crop_size={shown}: lower data.crop_size, raise data.scale, or remove the image"
            )


def _scaled_size(source: ImageSource, scale: float) -> tuple[int, int]:
    if isinstance(source, np.ndarray):
        height, width = source.shape[:2]
    else:
        width, height = image_size(source)
    if scale == 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def _pair(crop: int | Sequence[int]) -> tuple[int, int]:
    return (crop, crop) if isinstance(crop, int) else (int(crop[0]), int(crop[1]))


class RandomCropDataset(Dataset):
    """`length` random crops of `crop` (a side, or (height, width)) per epoch, each from a
    random image, flipped left-right with probability 1/2. Sample `(epoch, index)` is drawn
    from its own stream seeded by (seed, epoch, index): repeatable, different every epoch,
    and independent of workers and of where a resumed run starts."""

    def __init__(
        self,
        sources: Sequence[ImageSource],
        names: Sequence[str],
        crop: int | Sequence[int],
        length: int,
        scale: float = 1.0,
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        self.images = _Images(sources, names, scale)
        self.crop, self.length, self.flip, self.seed = _pair(crop), length, flip, seed
        self.sizes = [_scaled_size(s, scale) for s in self.images.sources]
        for index, size in enumerate(self.sizes):
            self.images.check_fits(index, size, self.crop)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        random = _random_for(self.seed, key)
        which = int(random.integers(len(self.images)))
        image = self.images[which]
        (height, width), (crop_h, crop_w) = image.shape[:2], self.crop
        top = int(random.integers(height - crop_h + 1))
        left = int(random.integers(width - crop_w + 1))
        crop = image[top : top + crop_h, left : left + crop_w]
        if self.flip and random.random() < 0.5:
            crop = crop[:, ::-1]
        return {"image": to_tensor(crop)}


class GridCropDataset(Dataset):
    """Deterministic crops for validation: up to `max_per_image` non-overlapping crops of
    `crop` (a side, or (height, width)) per image, on a grid centred in the image."""

    def __init__(
        self,
        sources: Sequence[ImageSource],
        names: Sequence[str],
        crop: int | Sequence[int],
        scale: float = 1.0,
        max_per_image: int = 16,
    ) -> None:
        self.images = _Images(sources, names, scale)
        self.crop = crop_h, crop_w = _pair(crop)
        self.crops: list[tuple[int, int, int]] = []
        for index, source in enumerate(self.images.sources):
            height, width = _scaled_size(source, scale)
            self.images.check_fits(index, (height, width), self.crop)
            rows, cols = height // crop_h, width // crop_w
            top0, left0 = (height - rows * crop_h) // 2, (width - cols * crop_w) // 2
            cells = [(top0 + r * crop_h, left0 + c * crop_w) for r in range(rows) for c in range(cols)]
            # Spread the kept crops over the whole grid rather than taking the first rows.
            keep = np.linspace(0, len(cells) - 1, num=min(max_per_image, len(cells))).round().astype(int)
            self.crops.extend((index, *cells[k]) for k in sorted(set(keep.tolist())))

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        which, top, left = self.crops[index]
        image = self.images[which]
        return {"image": to_tensor(image[top : top + self.crop[0], left : left + self.crop[1]])}


class FullImageDataset(Dataset):
    """Each image whole (after `scale`), for validation at the images' own sizes; the
    images differ in size, so load them with batch size 1."""

    def __init__(self, sources: Sequence[ImageSource], names: Sequence[str], scale: float = 1.0) -> None:
        self.images = _Images(sources, names, scale)
        for source in self.images.sources:
            _scaled_size(source, scale)  # reads a file's header: unreadable files are named now

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": to_tensor(self.images[index])}


class AlignedPairDataset(Dataset):
    """pix2pix's aligned format: each file holds A on its left half and B on its right.

    Training: both halves resized to `load_size`, then the same random `crop_size` crop
    and the same random left-right flip. Validation (`train=False`): both halves resized
    to `crop_size`, no randomness. `direction` AtoB makes A the input, BtoA makes B the input.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        crop_size: int,
        load_size: int,
        direction: str = "AtoB",
        train: bool = True,
        seed: int = 0,
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise ConfigError(f"data.direction must be AtoB or BtoA, got {direction!r}")
        if load_size < crop_size:
            raise ConfigError(
                f"data.load_size={load_size} is smaller than data.crop_size={crop_size}: make load_size >= crop_size"
            )
        if not paths:
            raise DataError("no images to build a dataset from")
        self.paths, self.crop_size, self.load_size = list(paths), crop_size, load_size
        for path in self.paths:
            image_size(path)  # reads the header only: unreadable files are named now, not mid-epoch
        self.direction, self.train, self.seed = direction, train, seed

    def __len__(self) -> int:
        return len(self.paths)

    def _halves(self, path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
        pair = load_rgb(path)
        width = pair.shape[1]
        if width < 2:
            raise DataError(f"{path} is {width} pixel(s) wide: an aligned pair needs A and B side by side")
        half = width // 2

        def fit(image: np.ndarray) -> np.ndarray:
            return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))

        return fit(pair[:, :half]), fit(pair[:, half : 2 * half])

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        index = key if isinstance(key, (int, np.integer)) else key[1]
        path = self.paths[index]
        size = self.load_size if self.train else self.crop_size
        a, b = self._halves(path, size)
        if self.train:
            random = _random_for(self.seed, key)
            top = int(random.integers(size - self.crop_size + 1))
            left = int(random.integers(size - self.crop_size + 1))
            window = (slice(top, top + self.crop_size), slice(left, left + self.crop_size))
            a, b = a[window], b[window]
            if random.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
        source, target = (a, b) if self.direction == "AtoB" else (b, a)
        return {"input": to_tensor(source), "target": to_tensor(target)}


