import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganforge.cli.rd import measure, quality_metrics, summarize
from ganforge.data import sample_photo


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(sample_photo("coffee")[::2, ::2]).save(folder / "coffee.png")  # 200x300
    Image.fromarray(sample_photo("chelsea")[::3, ::3]).save(folder / "cat.png")  # 100x151: no MS-SSIM
    return folder


def test_psnr_is_the_textbook_formula():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (180, 200, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2)
    metrics = quality_metrics(a, b)
    assert metrics["psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-4)
    assert 0 < metrics["ms_ssim"] < 1
    assert quality_metrics(a, a)["ms_ssim"] == pytest.approx(1.0, abs=1e-4)


def test_measure_covers_every_codec_setting_and_image(images, compression_checkpoint):
    rows = measure(sorted(images.iterdir()), [compression_checkpoint], jpeg=(5, 50), webp=(10,))
    assert len(rows) == 2 * (1 + 2 + 1)
    jpeg = {r["setting"]: r for r in rows if r["codec"] == "jpeg" and r["image"] == "coffee.png"}
    assert jpeg["q=5"]["bpp"] < jpeg["q=50"]["bpp"] and jpeg["q=5"]["psnr"] < jpeg["q=50"]["psnr"]
    gan = [r for r in rows if r["codec"].startswith("gan:")]
    assert all(r["bpp"] > 0 for r in gan)
    assert math.isnan(next(r for r in rows if r["image"] == "cat.png")["ms_ssim"])
    averages = summarize(rows)
    assert {(a["codec"], a["setting"]) for a in averages} == {(r["codec"], r["setting"]) for r in rows}
    coffee_jpeg5 = jpeg["q=5"]["bpp"]
    cat_jpeg5 = next(r["bpp"] for r in rows if r["codec"] == "jpeg" and r["setting"] == "q=5" and r["image"] == "cat.png")
    average = next(a for a in averages if a["codec"] == "jpeg" and a["setting"] == "q=5")
    assert average["bpp"] == pytest.approx((coffee_jpeg5 + cat_jpeg5) / 2)


def test_the_command_writes_csv_json_and_a_plot(tmp_path, images, compression_checkpoint):
    out = tmp_path / "rd"
    result = subprocess.run(
        [sys.executable, "-m", "ganforge.cli", "rd", "--ckpt", str(compression_checkpoint), "--jpeg", "10,50",
         "--webp", "10", "--out", str(out), str(images)],
        capture_output=True, text=True, env={**os.environ}, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with open(out / "rd.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 4
    document = json.loads((out / "rd.json").read_text())
    assert len(document["averages"]) == 4
    with Image.open(out / "rd.png") as plot:
        assert plot.size[0] > 500
