"""Classical codecs for rate-distortion comparisons: JPEG, WebP and AVIF through Pillow,
each at a sweep of qualities and resolutions.

At low rates a classical codec does better on a smaller picture: downscale by `scale`
(Lanczos), code, decode, upscale back to the original size (Lanczos). The scale sweep
gives JPEG, WebP and AVIF points at the rates of a learned codec (~0.03 bpp), which
their quality settings alone cannot reach on full-size images.
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["FORMATS", "QUALITIES", "SCALES", "available", "round_trip", "setting_label"]

FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}  # codec name -> Pillow format
QUALITIES = {  # Pillow's quality: 0 (or 1) is the smallest file, 100 the best picture
    "jpeg": (1, 5, 10, 20, 30, 50, 75),
    "webp": (0, 5, 10, 20, 30, 50, 75),
    "avif": (0, 10, 20, 30, 50, 75),
}
SCALES = (1, 2, 4, 8)  # downscaling factors of the resolution sweep


def available(codec: str) -> bool:
    """Whether this Pillow can write and read `codec` (AVIF needs a Pillow built with libavif)."""
    from PIL import features

    return codec != "avif" or bool(features.check("avif"))


def setting_label(quality: int, scale: int) -> str:
    """'q=30' at full size, 'q=30,scale=1/4' at a quarter of the width and height."""
    return f"q={quality}" if scale == 1 else f"q={quality},scale=1/{scale}"


def round_trip(image: np.ndarray, codec: str, quality: int, scale: int = 1) -> tuple[int, np.ndarray]:
    """uint8 RGB (H, W, 3) -> (file size in bytes, the decoded picture (H, W, 3) uint8)
    after downscaling by `scale`, coding with `codec` at `quality` and upscaling back."""
    from PIL import Image

    height, width = image.shape[:2]
    picture = Image.fromarray(image)
    if scale != 1:
        size = (max(1, round(width / scale)), max(1, round(height / scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format=FORMATS[codec], quality=quality)
    size = buffer.tell()
    buffer.seek(0)
    with Image.open(buffer) as coded:
        decoded = coded.convert("RGB")
    if scale != 1:
        decoded = decoded.resize((width, height), Image.Resampling.LANCZOS)
    return size, np.asarray(decoded)
