"""DataModules of labelled images for generation from noise: `data=digits` (scikit-learn's
bundled 8x8 digits) and `data=class_folder` (one subfolder per class, e.g. CIFAR-10's PNG
export).

Training batches are ``{"image": (N, C, S, S) float in [0, 1], "label": (N,) int64}``, S
= data.image_size, C = data.channels. The epoch's order is shuffled from (seed, epoch) and
a flip is drawn from (seed, epoch, index), so a resumed run sees the same batches.
Validation is the fixed FID reference set, whose batches add ``"index": (N,) int64``, the
image's position in that set. `num_classes`, `class_names` and `channels` tell the task
what the data is (unconditional models ignore "label").
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ganforge.checks import check_bool, check_int, check_number
from ganforge.data.datamodules import CropDataModule, _existing_folder
from ganforge.data.labelled_sets import (
    ClassFolderImages,
    DigitImages,
    LabelledImages,
    LabelledTrainSet,
    ReferenceSet,
    reference_positions,
    scan_class_folder,
)
from ganforge.errors import ConfigError, DataError

__all__ = ["LabelledDataModule", "DigitsDataModule", "ClassFolderDataModule"]


def _image_size(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 8 or value % 8:
        raise ConfigError(
            f"data.image_size must be a positive multiple of 8 (the generators grow 4x4 maps by factors of 2), got {value!r}"
        )
    return value


def _channels(value) -> int:
    if isinstance(value, bool) or value not in (1, 3):
        raise ConfigError(f"data.channels must be 1 (grey) or 3 (RGB), got {value!r}")
    return int(value)


class LabelledDataModule(CropDataModule):
    """Shared by the labelled image sets: subclasses say where the images come from (`images`).

    reference_size: the FID reference set's size; None takes all its images, else a fixed
    subset chosen by `reference_seed` (not data.seed: runs with different seeds compare
    against the same images; see `reference_positions`).
    """

    kind = "images"
    shuffle_train = True  # an index names one image

    def __init__(self, image_size: int = 32, channels: int = 3, flip: bool = False, reference_size: int | None = None,
                 reference_seed: int = 0, **loader) -> None:
        super().__init__(**loader)
        self.image_size = _image_size(image_size)
        self.channels = _channels(channels)
        self.flip = check_bool("data.flip", flip)
        self.reference_size = None if reference_size is None else check_int("data.reference_size", reference_size, 1)
        self.reference_seed = check_int("data.reference_seed", reference_seed, 0)
        self._class_names: list[str] | None = None

    def images(self) -> tuple[LabelledImages, LabelledImages]:
        """(training images, the images the reference set is drawn from); may be one object."""
        raise NotImplementedError

    def reference_source(self) -> str:
        """How a message names the reference images."""
        return "the training set"

    def build(self) -> tuple[Dataset, Dataset]:
        train, reference = self.images()
        if self.reference_size is not None and self.reference_size > len(reference):
            raise DataError(
                f"data.reference_size={self.reference_size} is larger than the {len(reference)} images of "
                f"{self.reference_source()}: lower it, or set data.reference_size=null to take them all"
            )
        self._class_names = list(train.class_names)
        positions = reference_positions(len(reference), self.reference_size, self.reference_seed)
        return LabelledTrainSet(train, self.flip, self.seed), ReferenceSet(reference, positions)

    @property
    def class_names(self) -> list[str]:
        """The classes, label i named class_names[i]. Reading it sets the data up (once)."""
        self.setup()
        return list(self._class_names)

    def labelled_training_images(self, limit: int | None = 10000) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, C, S, S) float in [0, 1], labels (N,) int64) of the training set: at
        most `limit`, a fixed subset (`reference_positions` with seed 0) when there are more.
        What the offline feature classifier of the generation metrics trains on."""
        self.setup()
        train = self.train_set.images
        positions = reference_positions(len(train), None if limit is None or limit >= len(train) else limit, 0)
        images = torch.stack([train.image(int(i)) for i in positions])
        labels = torch.as_tensor(train.labels[positions], dtype=torch.long)
        return images, labels

    @property
    def num_classes(self) -> int:
        """K: the labels are 0..K-1 (a conditional model checks its num_classes against it)."""
        return len(self.class_names)


class DigitsDataModule(LabelledDataModule):
    """scikit-learn's 1797 bundled 8x8 digits (labels 0..9), upsampled bilinearly to
    `image_size` (see DigitImages); grey (`channels` 1) or the grey plane three times (3).
    Flipping is off by default: a mirrored 2 is not a 2."""

    def __init__(self, image_size: int = 32, channels: int = 1, flip: bool = False, reference_size: int | None = None,
                 reference_seed: int = 0, **loader) -> None:
        super().__init__(image_size, channels, flip, reference_size, reference_seed, **loader)
        self._digits: DigitImages | None = None

    def images(self) -> tuple[LabelledImages, LabelledImages]:
        if self._digits is None:
            self._digits = DigitImages(self.image_size, self.channels)
        return self._digits, self._digits


class ClassFolderDataModule(LabelledDataModule):
    """The ImageFolder layout: `root/<class>/**/*.png` (any image format find_images knows),
    class folders sorted by name -> labels 0..K-1, e.g. CIFAR-10's PNG export with
    ``data.root=/path/to/cifar10/train``. Every image is converted to RGB (grey, RGBA) and
    fitted to `image_size` (shorter side, then the centre; see fit_square); `channels` 1
    takes its luma. Images are read from disk when first needed and kept decoded up to
    `cache_mb` MiB per process.

    reference_root: another class folder with the same classes for the FID reference set
    (e.g. ``/path/to/cifar10/test``); None draws it from `root`.
    """

    def __init__(self, root: str | None = None, image_size: int = 32, channels: int = 3, flip: bool = False,
                 reference_root: str | None = None, reference_size: int | None = None, reference_seed: int = 0,
                 cache_mb: float = 512, **loader) -> None:
        super().__init__(image_size, channels, flip, reference_size, reference_seed, **loader)
        self.root = root
        self.reference_root = None if reference_root is None or str(reference_root).strip() == "" else reference_root
        self.cache_bytes = int(check_number("data.cache_mb", cache_mb, 0) * 2**20)

    def _folder(self, key: str, root) -> ClassFolderImages:
        names, files, labels = scan_class_folder(key, _existing_folder(key, root))
        return ClassFolderImages(files, labels, names, self.image_size, self.channels, self.cache_bytes)

    def reference_source(self) -> str:
        return f"data.reference_root={self.reference_root}" if self.reference_root is not None else f"data.root={self.root}"

    def images(self) -> tuple[LabelledImages, LabelledImages]:
        train = self._folder("data.root", self.root)
        if self.reference_root is None:
            return train, train
        reference = self._folder("data.reference_root", self.reference_root)
        if reference.class_names != train.class_names:
            raise DataError(
                f"data.reference_root={self.reference_root} has the classes {reference.class_names}, data.root has "
                f"{train.class_names}: the reference set needs the training classes (the same folder names)"
            )
        return train, reference
