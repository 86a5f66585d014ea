"""Reading images from disk and from scikit-image's bundled photos."""

from __future__ import annotations

import warnings
from pathlib import Path
import numpy as np
from PIL import Image, UnidentifiedImageError

from ganforge.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAMPLE_PHOTOS",
    "find_images",
    "image_size",
    "load_rgb",
    "resize",
    "sample_photo",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# Colour photos that ship inside scikit-image; nothing is downloaded.
SAMPLE_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "motorcycle_left",
    "motorcycle_right",
    "retina",
    "rocket",
)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode -> 8-bit RGB. Transparent pixels are composited over white, 16-bit grey is rescaled."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_rgb(path: str | Path) -> np.ndarray:
    """The image at `path` as uint8 RGB of shape (H, W, 3); grey and RGBA files are converted.

    Raises DataError naming the file when it is missing, not an image, or damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return np.asarray(_to_rgb(image)).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as error:
        raise DataError(f"cannot read image {path}: {error}; replace or remove the file") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}; replace or remove the file") from None


def find_images(root: str | Path, recursive: bool = True) -> list[Path]:
    """Image files under `root` (by extension, case-insensitive), sorted."""
    root = Path(root)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def sample_photo(name: str) -> np.ndarray:
    """One of `SAMPLE_PHOTOS` from scikit-image's bundled data, as uint8 RGB (H, W, 3)."""
    if name not in SAMPLE_PHOTOS:
        raise DataError(f"unknown sample photo {name!r}: choose from {', '.join(SAMPLE_PHOTOS)}")
    import skimage.data

    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name.endswith("left") else right
    return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize uint8 (H, W, 3) by `scale` with an antialiasing filter (Pillow's Lanczos)."""
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
