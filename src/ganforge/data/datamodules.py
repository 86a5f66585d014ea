"""Lightning DataModules: the bundled sample photos, a folder of images, and a folder of
aligned pix2pix pairs.

`kind` tells a task what a batch holds: "images" batches are ``{"image": (N, 3, H, W)}``,
"pairs" batches are ``{"input": ..., "target": ...}``; all in [0, 1] RGB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from ganforge.checks import check_choice, check_int, check_number
from ganforge.data.datasets import AlignedPairDataset, FullImageDataset, GridCropDataset, RandomCropDataset
from ganforge.data.images import SAMPLE_PHOTOS, find_images, sample_photo
from ganforge.data.sampling import EpochSampler, ResumableDataLoader
from ganforge.compat import batches_ready_in_epoch
from ganforge.errors import ConfigError, DataError

__all__ = ["CropDataModule", "SingleImageDataModule", "SampleDataModule", "FolderDataModule", "PairedDataModule"]


class CropDataModule(L.LightningDataModule):
    """Shared loader settings; subclasses say how to build the train and val datasets.

    seed: the training data's randomness (crop positions, flips, the order of pairs) is a
    function of (seed, epoch, sample) alone, so a resumed run sees the same batches.
    """

    kind = "images"
    # Whether each training epoch visits the keys in an order shuffled from (seed, epoch):
    # where an index names one fixed sample (a file, a pair). Random crops are random already.
    shuffle_train = False

    def __init__(self, batch_size: int = 16, val_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = False, kind: str | None = None, seed: int = 0) -> None:
        super().__init__()
        self.seed = check_int("data.seed", seed, 0)
        # `kind` is in the data config so the model config can read it; it must match.
        if kind is not None and kind != self.kind:
            raise ConfigError(f"data.kind={kind!r} does not fit {type(self).__name__}, whose batches are {self.kind!r}")
        self.batch_size = check_int("data.batch_size", batch_size, 1)
        self.val_batch_size = check_int("data.val_batch_size", val_batch_size or batch_size, 1)
        self.num_workers = check_int("data.num_workers", num_workers, 0)
        self.pin_memory = bool(pin_memory)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def build(self) -> tuple[Dataset, Dataset]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        # Idempotent, so the CLI can call it early and report bad data before training starts.
        if self.train_set is None:
            self.train_set, self.val_set = self.build()
            if len(self.train_set) < self.batch_size:
                raise ConfigError(
                    f"data.batch_size={self.batch_size} is larger than the {len(self.train_set)} training "
                    "samples per epoch: lower data.batch_size"
                )

    def _training_progress(self) -> tuple[int, int]:
        """(epoch, batches of it trained on): where a resumed run continues."""
        trainer = self.trainer
        if trainer is None:
            return 0, 0
        return trainer.current_epoch, batches_ready_in_epoch(trainer)

    def _processes(self) -> tuple[int, int]:
        """(processes, this one's global rank) of the training run: each process loads its
        own share of the data (the trainer's use_distributed_sampler is off, see EpochSampler)."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        replicas, rank = self._processes()
        return ResumableDataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=EpochSampler(len(self.train_set), self.seed, shuffle=self.shuffle_train, replicas=replicas, rank=rank),
            drop_last=True,  # a last batch of one would break batch norm
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            # the workers' base seed comes from here, not from the global RNG
            generator=torch.Generator().manual_seed(self.seed),
            progress=self._training_progress,
        )

    def val_dataloader(self) -> DataLoader:
        self.setup()
        # Whole images differ in size: one per batch.
        batch_size = 1 if isinstance(self.val_set, FullImageDataset) else self.val_batch_size
        # Data parallel: each process validates its share and the metrics gather their
        # states, so every image counts once. With fewer images than processes, every
        # process validates all of them: each counts equally often, the means are the same.
        replicas, rank = self._processes()
        share = range(rank, len(self.val_set), replicas) if 1 < replicas <= len(self.val_set) else None
        return DataLoader(
            self.val_set,
            batch_size=batch_size,
            sampler=share,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            generator=torch.Generator().manual_seed(self.seed),
        )


def _crop_shape(value) -> tuple[int, int]:
    """data.crop_size: one side for square crops, or [height, width]."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return check_int("data.crop_size", value[0], 1), check_int("data.crop_size", value[1], 1)
    if isinstance(value, (list, tuple)):
        raise ConfigError(f"data.crop_size must be one side or [height, width], got {list(value)}")
    side = check_int("data.crop_size", value, 1)
    return side, side


def _val_scale(value, scale: float) -> float:
    return scale if value is None else check_number("data.val_scale", value, 0, 1, open_minimum=True)


class SingleImageDataModule(CropDataModule):
    """Random training crops and fixed validation crops (or whole images) of single images.

    Subclasses say where the images come from (`sources`); the crop and scale options
    are the same for all of them.
    """

    def __init__(
        self,
        crop_size: int | Sequence[int],
        scale: float,
        samples_per_epoch: int,
        max_val_crops_per_image: int,
        val_full_images: bool = False,
        val_scale: float | None = None,
        **loader: int,
    ) -> None:
        super().__init__(**loader)
        self.crop_size = _crop_shape(crop_size)
        self.scale = check_number("data.scale", scale, 0, 1, open_minimum=True)
        self.val_scale = _val_scale(val_scale, self.scale)
        self.samples_per_epoch = check_int("data.samples_per_epoch", samples_per_epoch, 1)
        self.max_val_crops_per_image = check_int("data.max_val_crops_per_image", max_val_crops_per_image, 1)
        self.val_full_images = bool(val_full_images)

    def sources(self) -> tuple[tuple[list, list[str]], tuple[list, list[str]]]:
        """((train images, their names), (validation images, their names)); an image is an
        array in memory or a path."""
        raise NotImplementedError

    def build(self) -> tuple[Dataset, Dataset]:
        (train, train_names), (val, val_names) = self.sources()
        train_set = RandomCropDataset(train, train_names, self.crop_size, self.samples_per_epoch, self.scale,
                                      seed=self.seed)
        if self.val_full_images:
            return train_set, FullImageDataset(val, val_names, self.val_scale)
        return train_set, GridCropDataset(val, val_names, self.crop_size, self.val_scale, self.max_val_crops_per_image)


class SampleDataModule(SingleImageDataModule):
    """Random crops of scikit-image's bundled colour photos, split into train and val by image.

    Each training epoch is `samples_per_epoch` random crops (with left-right flips);
    validation is a fixed grid of crops of the `val_images`, or the whole images with
    `val_full_images` (the task pads them to its networks' multiple and crops back).
    """

    def __init__(
        self,
        train_images: Sequence[str] = ("astronaut", "coffee", "rocket", "motorcycle_left", "immunohistochemistry"),
        val_images: Sequence[str] = ("chelsea",),
        crop_size: int | Sequence[int] = 64,
        scale: float = 0.5,
        samples_per_epoch: int = 640,
        max_val_crops_per_image: int = 16,
        val_full_images: bool = False,
        val_scale: float | None = None,
        **loader: int,
    ) -> None:
        super().__init__(crop_size, scale, samples_per_epoch, max_val_crops_per_image, val_full_images, val_scale,
                         **loader)
        for key, names in (("data.train_images", train_images), ("data.val_images", val_images)):
            if isinstance(names, str) or not names:
                raise ConfigError(f"{key} must be a non-empty list of names from {', '.join(SAMPLE_PHOTOS)}")
            for name in names:
                check_choice(key, name, SAMPLE_PHOTOS)
        overlap = sorted(set(train_images) & set(val_images))
        if overlap:
            raise ConfigError(f"{overlap} are in both data.train_images and data.val_images: the split is by image")
        self.train_images, self.val_images = list(train_images), list(val_images)

    def sources(self):
        return (
            ([sample_photo(n) for n in self.train_images], self.train_images),
            ([sample_photo(n) for n in self.val_images], self.val_images),
        )


def _existing_folder(key: str, root: str | Path | None) -> Path:
    if root is None or str(root).strip() == "":
        raise ConfigError(f"{key} is not set: pass {key}=/path/to/images")
    path = Path(str(root)).expanduser()
    if not path.is_dir():
        raise DataError(f"{key}={path} is not a folder: check the path")
    return path


class FolderDataModule(SingleImageDataModule):
    """Random crops of every image in a folder (searched recursively).

    If `root` has `train/` and `val/` subfolders they are used; otherwise every
    ``round(1 / val_fraction)``-th image in sorted order is held out for validation.
    Images are read from disk as they are needed. Validation takes centred crops, or the
    whole images with `val_full_images`.
    """

    def __init__(
        self,
        root: str | None = None,
        crop_size: int | Sequence[int] = 256,
        scale: float = 1.0,
        samples_per_epoch: int = 1000,
        val_fraction: float = 0.1,
        max_val_crops_per_image: int = 1,
        val_full_images: bool = False,
        val_scale: float | None = None,
        **loader: int,
    ) -> None:
        super().__init__(crop_size, scale, samples_per_epoch, max_val_crops_per_image, val_full_images, val_scale,
                         **loader)
        self.root = root
        self.val_fraction = check_number("data.val_fraction", val_fraction, 0, 0.5, open_minimum=True)

    def split(self) -> tuple[list[Path], list[Path]]:
        root = _existing_folder("data.root", self.root)
        if (root / "train").is_dir() and (root / "val").is_dir():
            train, val = find_images(root / "train"), find_images(root / "val")
            for name, files in (("train", train), ("val", val)):
                if not files:
                    raise DataError(f"no images in {root / name}: add images or remove the empty folder")
            return train, val
        files = find_images(root)
        if len(files) < 2:
            raise DataError(
                f"{root} holds {len(files)} image(s); training needs at least 2 (one is held out for validation)"
            )
        every = max(2, round(1 / self.val_fraction))
        val = files[every - 1 :: every] or files[-1:]
        held = set(val)
        return [f for f in files if f not in held], val

    def sources(self):
        train, val = self.split()
        return (train, [str(p) for p in train]), (val, [str(p) for p in val])


class PairedDataModule(CropDataModule):
    """pix2pix's aligned A|B format: `root/train/` and `root/val/` hold images with A on the
    left half and B on the right (e.g. facades, maps, edges2shoes)."""

    kind = "pairs"
    shuffle_train = True  # the pairs are files in a fixed order

    def __init__(
        self,
        root: str | None = None,
        crop_size: int = 256,
        load_size: int = 286,
        direction: str = "AtoB",
        **loader: int,
    ) -> None:
        super().__init__(**loader)
        self.root = root
        self.crop_size = check_int("data.crop_size", crop_size, 1)
        self.load_size = check_int("data.load_size", load_size, 1)
        self.direction = check_choice("data.direction", direction, ("AtoB", "BtoA"))
        if self.load_size < self.crop_size:
            raise ConfigError(
                f"data.load_size={load_size} is smaller than data.crop_size={crop_size}: make load_size >= crop_size"
            )

    def build(self) -> tuple[Dataset, Dataset]:
        root = _existing_folder("data.root", self.root)
        for split in ("train", "val"):
            if not (root / split).is_dir():
                raise DataError(f"{root / split} is missing: the paired format needs {root}/train and {root}/val folders")
        sets = []
        for split in ("train", "val"):
            folder = root / split
            files = find_images(folder)
            if not files:
                raise DataError(f"no images in {folder}: the paired format needs A|B images there")
            sets.append(AlignedPairDataset(files, self.crop_size, self.load_size, self.direction, train=split == "train",
                                           seed=self.seed))
        return sets[0], sets[1]
