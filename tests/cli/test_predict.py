"""`python predict.py` as a user runs it: photos of any size in, PNGs of the same size out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab

from ganforge.checkpoint import load_task
from ganforge.data import sample_photo
from ganforge.data.datasets import to_tensor
from tests.cli.helpers import run_script


def predict(ckpt: Path, source: Path, output: Path, *overrides: str):
    return run_script("predict.py", f"ckpt_path={ckpt}", f"input={source}", f"output={output}", *overrides)


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A colour JPEG, a greyscale PNG in a subfolder, and a file that is not an image."""
    folder = tmp_path / "photos"
    (folder / "grey").mkdir(parents=True)
    Image.fromarray(sample_photo("chelsea")[::4, ::4]).save(folder / "cat.jpg", quality=95)  # 75x113
    Image.fromarray(sample_photo("rocket")[::5, ::5]).convert("L").save(folder / "grey" / "rocket.png")
    (folder / "notes.png").write_bytes(b"not an image")
    return folder


def expected_output(ckpt: Path, image: np.ndarray, train_mode: bool = False) -> np.ndarray:
    task = load_task(ckpt)
    result = task.translate(to_tensor(image).unsqueeze(0))[0]
    return (result * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.mark.slow
def test_colorizes_a_folder_keeping_sizes_and_lightness_and_skips_the_unreadable(pix2pix_checkpoint, photos, tmp_path):
    result = predict(pix2pix_checkpoint, photos, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 image(s) written" in result.stdout and "1 skipped" in result.stdout
    assert "notes.png" in result.stderr and "Traceback" not in result.stderr
    cat, rocket = read(tmp_path / "out" / "cat.png"), read(tmp_path / "out" / "grey" / "rocket.png")
    original = np.asarray(Image.open(photos / "cat.jpg").convert("RGB"))
    assert cat.shape == original.shape and rocket.shape[:2] == Image.open(photos / "grey" / "rocket.png").size[::-1]
    # Colorization keeps the photo's lightness (skimage's Lab as the reference); only
    # 8-bit rounding and colours outside the sRGB gamut move it.
    lightness_error = np.abs(rgb2lab(cat)[..., 0] - rgb2lab(original)[..., 0])
    assert np.median(lightness_error) < 1.0
    # What the command wrote is what the model computes in eval mode.
    np.testing.assert_array_equal(cat, expected_output(pix2pix_checkpoint, original))


@pytest.mark.slow
def test_eval_mode_is_repeatable_and_train_mode_keeps_dropout(pix2pix_dropout_checkpoint, tmp_path):
    photo = tmp_path / "cat.png"
    Image.fromarray(sample_photo("chelsea")[::4, ::4]).save(photo)
    runs = {}
    for name, overrides in {"eval": [], "train": ["predict.train_mode=true"],
                            "raw": ["predict.use_ema=false"]}.items():
        result = predict(pix2pix_dropout_checkpoint, photo, tmp_path / name, *overrides)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = read(tmp_path / name / "cat.png")
    np.testing.assert_array_equal(runs["eval"], expected_output(pix2pix_dropout_checkpoint, read(photo)))
    assert not np.array_equal(runs["eval"], runs["train"])  # dropout and batch statistics
    assert not np.array_equal(runs["eval"], runs["raw"])  # the moving average is the default


@pytest.mark.slow
def test_compression_writes_the_reconstruction_at_the_input_size(compression_checkpoint, tmp_path):
    photo = tmp_path / "cat.png"
    image = sample_photo("chelsea")[::4, ::4]
    Image.fromarray(image).save(photo)
    result = predict(compression_checkpoint, photo, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(read(tmp_path / "out" / "cat.png"), expected_output(compression_checkpoint, image))


@pytest.mark.parametrize("case", ["missing checkpoint", "empty folder", "only unreadable", "output is a file",
                                  "missing input", "no input given"])
def test_bad_input_is_one_line_and_a_non_zero_exit(case, pix2pix_checkpoint, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    existing = tmp_path / "result.png"
    existing.write_bytes(b"keep me")
    args, words = {
        "missing checkpoint": ([f"ckpt_path={tmp_path / 'none.ckpt'}", f"input={broken}", f"output={tmp_path}/o"],
                               "checkpoint not found"),
        "empty folder": ([f"ckpt_path={pix2pix_checkpoint}", f"input={empty}", f"output={tmp_path}/o"], "no images"),
        "only unreadable": ([f"ckpt_path={pix2pix_checkpoint}", f"input={broken}", f"output={tmp_path}/o"],
                            "cannot read image"),
        "output is a file": ([f"ckpt_path={pix2pix_checkpoint}", f"input={broken}", f"output={existing}"],
                             "is a file"),
        "missing input": ([f"ckpt_path={pix2pix_checkpoint}", f"input={tmp_path / 'nope.jpg'}", f"output={tmp_path}/o"],
                          "does not exist"),
        "no input given": ([f"ckpt_path={pix2pix_checkpoint}", f"output={tmp_path}/o"], "input is missing"),
    }[case]
    result = run_script("predict.py", *args)
    assert result.returncode != 0
    assert words in result.stderr and "Traceback" not in result.stderr
    assert existing.read_bytes() == b"keep me"
