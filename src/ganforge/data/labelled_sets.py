"""Labelled images of one size for generation from noise: scikit-learn's 8x8 digits and
class folders (the ImageFolder layout), the training set over them and the fixed FID
reference set.

An item is ``{"image": (C, S, S) float32 in [0, 1], "label": () int64}``; reference items
add ``"index": () int64``, the item's position in the reference set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from ganforge.data.datasets import SampleKey, _random_for, to_tensor
from ganforge.data.images import IMAGE_EXTENSIONS, find_images, load_rgb
from ganforge.errors import DataError

__all__ = ["LabelledImages", "DigitImages", "ClassFolderImages", "scan_class_folder", "fit_square",
           "reference_positions", "LabelledTrainSet", "ReferenceSet"]


class LabelledImages:
    """N images of `channels` x `size` x `size` with labels 0..K-1 (`labels`, (N,) int64)
    named by `class_names`; `image(i)` -> (C, S, S) float32 in [0, 1]."""

    labels: np.ndarray
    class_names: list[str]
    size: int
    channels: int

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> torch.Tensor:
        raise NotImplementedError


class DigitImages(LabelledImages):
    """scikit-learn's bundled digits (`load_digits`: 1797 8x8 images, values 0..16, labels
    0..9; in the wheel, nothing is downloaded), divided by 16 and upsampled to `size`.

    Upsampling is bilinear (half-pixel centres, torch's align_corners=False, the same as
    Pillow's BILINEAR when enlarging): each output pixel is a convex combination of input
    pixels, so values stay in [0, 1] with no ringing (bicubic overshoots) and strokes have
    no 4x4 blocks (nearest) for a generator to learn. All images are upsampled once, in
    memory: 1797 x S x S float32 (7 MB at 32). channels 3 repeats the grey plane.
    """

    def __init__(self, size: int, channels: int = 1) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        small = torch.from_numpy(np.asarray(digits.images, dtype=np.float32) / 16.0).unsqueeze(1)
        self.pixels = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
        self.labels = np.asarray(digits.target, dtype=np.int64)
        self.class_names = [str(name) for name in digits.target_names]
        self.size, self.channels = size, channels

    def image(self, index: int) -> torch.Tensor:
        return self.pixels[index].repeat(self.channels, 1, 1)


# Folder names that mean a dataset's split: a root holding only these is one level too high.
SPLIT_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing"}


def scan_class_folder(key: str, root: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """(class names, image files, their labels) of the ImageFolder layout: one subfolder
    per class, names sorted -> labels 0..K-1, images searched recursively in each. Folders
    whose name starts with "." (.git, .ipynb_checkpoints) are skipped."""
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if loose:
        raise DataError(
            f"{key}={root} holds {len(loose)} image(s) beside its class folders (e.g. {loose[0]}): move each into "
            "the folder of its class, or use data=folder for unlabelled images"
        )
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        shown = f" ({names[0]})" if names else ""
        raise DataError(
            f"{key}={root} has {len(names)} class folder{'' if len(names) == 1 else 's'}{shown}: a class folder needs "
            "at least 2 classes; for unlabelled images use data=folder"
        )
    if set(names) <= SPLIT_NAMES:
        raise DataError(
            f"{key}={root} has the class folders {', '.join(names)}, which name splits, not classes: point {key} at "
            f"one split, e.g. {key}={root / names[-1]}"
        )
    files, labels = [], []
    for label, name in enumerate(names):
        found = find_images(root / name)
        if not found:
            raise DataError(f"{key}={root}: class folder {name} holds no images: add images or remove the folder")
        files += found
        labels += [label] * len(found)
    return names, files, np.asarray(labels, dtype=np.int64)


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, C) -> (size, size, C): the shorter side scaled to `size` and the centre
    cropped, in one Pillow bicubic resample of the central square (antialiased when it
    shrinks: clean-fid's advice, Parmar et al. 2022). An image of that size already is
    returned as it is (CIFAR-10 at 32)."""
    height, width = image.shape[:2]
    if height == width == size:
        return image
    side = min(height, width)
    left, top = (width - side) / 2, (height - side) / 2
    fitted = Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
    return np.asarray(fitted)


class ClassFolderImages(LabelledImages):
    """Image files with labels, read on demand: RGB as `load_rgb` converts them (grey and
    RGBA included), fitted by `fit_square`; channels 1 takes Pillow's ITU-R 601-2 luma
    (L = 0.299 R + 0.587 G + 0.114 B). Decoded images are kept in memory until they fill
    `cache_bytes` (per process: each loader worker has its own), so later epochs skip the
    PNG decoding; CIFAR-10's 50,000 at 32x32 RGB take 147 MiB."""

    def __init__(self, files: Sequence[Path], labels: np.ndarray, class_names: Sequence[str], size: int,
                 channels: int = 3, cache_bytes: int = 512 << 20) -> None:
        self.files, self.labels, self.class_names = list(files), np.asarray(labels, dtype=np.int64), list(class_names)
        self.size, self.channels = size, channels
        self.cache_limit = cache_bytes // (size * size * channels)  # images
        self._cache: dict[int, np.ndarray] = {}

    def _decoded(self, index: int) -> np.ndarray:
        image = fit_square(load_rgb(self.files[index]), self.size)
        if self.channels == 1:
            image = np.asarray(Image.fromarray(image).convert("L"))[..., None]
        return image

    def image(self, index: int) -> torch.Tensor:
        image = self._cache.get(index)
        if image is None:
            image = self._decoded(index)
            if len(self._cache) < self.cache_limit:
                self._cache[index] = image
        return to_tensor(image)


def reference_positions(count: int, size: int | None, seed: int) -> np.ndarray:
    """The images (of `count`) in the FID reference set, sorted: all for size None, else
    the `size` with the smallest BLAKE2b digest of (seed, index). Hashing, not a numpy
    generator, so the set is the same on every machine and library version, and a larger
    size keeps the smaller one's images."""
    if size is None:
        return np.arange(count)
    digests = [hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest() for index in range(count)]
    return np.sort(np.asarray(sorted(range(count), key=digests.__getitem__)[:size], dtype=np.int64))


class LabelledTrainSet(Dataset):
    """Training items by `(epoch, index)` key (ganforge.data.sampling.EpochSampler; a plain
    index is epoch 0): image `index` with its label, flipped left-right with probability 1/2
    when `flip`, drawn from the stream of (seed, epoch, index) so a resumed run is exact."""

    def __init__(self, images: LabelledImages, flip: bool = False, seed: int = 0) -> None:
        self.images, self.flip, self.seed = images, flip, seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        index = int(key) if isinstance(key, (int, np.integer)) else int(key[1])
        image = self.images.image(index)
        if self.flip and _random_for(self.seed, key).random() < 0.5:
            image = image.flip(-1)
        return {"image": image, "label": torch.tensor(self.images.labels[index], dtype=torch.int64)}


class ReferenceSet(Dataset):
    """The fixed FID reference set: item i is image `positions[i]`, never flipped, with its
    label and ``"index": i``."""

    def __init__(self, images: LabelledImages, positions: np.ndarray) -> None:
        self.images, self.positions = images, np.asarray(positions, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        which = int(self.positions[index])
        return {
            "image": self.images.image(which),
            "label": torch.tensor(self.images.labels[which], dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }
