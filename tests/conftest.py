import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Never let a test reach the network or ask for a W&B login.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def write_image(path: Path, size=(40, 30), mode="RGB", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    width, height = size
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Five 80x60 RGB photos-to-be of random noise, one grey, one RGBA, in nested folders."""
    root = tmp_path / "images"
    for i in range(3):
        write_image(root / f"rgb_{i}.png", (80, 60), seed=i)
    write_image(root / "sub" / "grey.jpg", (80, 60), mode="L", seed=7)
    write_image(root / "sub" / "alpha.png", (80, 60), mode="RGBA", seed=8)
    return root


@pytest.fixture
def paired_folder(tmp_path: Path) -> Path:
    """pix2pix's aligned layout: train/ and val/ with 64x32 A|B images, A = B inverted."""
    root = tmp_path / "pairs"
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for i in range(count):
            b = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            pair = np.concatenate([255 - b, b], axis=1)
            (root / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pair).save(root / split / f"{i}.png")
    return root
