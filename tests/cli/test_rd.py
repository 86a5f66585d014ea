import csv
import json
import math
import sys

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import rd
from ganforge.cli.rd import measure, quality_metrics, summarize
from ganforge.codec.classical import available, round_trip
from ganforge.codec.rate_distortion import equal_rate, front, interpolate
from ganforge.data import sample_photo
from tests.cli.helpers import run_cli

needs_avif = pytest.mark.skipif(not available("avif"), reason="this Pillow cannot write AVIF")


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


@pytest.mark.parametrize("codec", ["jpeg", "webp", pytest.param("avif", marks=needs_avif)])
def test_downscaling_reaches_lower_rates_and_comes_back_at_full_size(codec):
    image = sample_photo("coffee")[::2, ::2]
    full, quarter = round_trip(image, codec, 10, 1), round_trip(image, codec, 10, 4)
    assert quarter[1].shape == full[1].shape == image.shape
    assert quarter[0] < full[0] / 2  # not / 16: the headers stay
    # A smooth picture survives the trip down and up: nothing shifted or flipped.
    ramp = np.broadcast_to(np.linspace(0, 255, 240)[None, :, None], (160, 240, 3)).astype(np.uint8)
    assert quality_metrics(ramp, round_trip(ramp, codec, 75, 8)[1])["psnr"] > 35


def test_the_front_keeps_the_settings_no_other_beats_at_a_lower_rate():
    points = [{"setting": s, "bpp": b, "psnr": p} for s, b, p in
              [("a", 0.1, 20.0), ("b", 0.2, 19.0), ("c", 0.2, 23.0), ("d", 0.4, 25.0), ("e", 0.8, 24.0)]]
    assert [p["setting"] for p in front(points, "psnr")] == ["a", "c", "d"]
    # Linear in log(bpp): 0.1 -> 20 dB, 0.2 -> 23 dB, so 0.1 * sqrt(2) -> 21.5 dB.
    assert interpolate(points, 0.1 * math.sqrt(2), "psnr") == pytest.approx(21.5)
    assert interpolate(points, 0.4, "psnr") == 25.0
    assert interpolate(points, 0.05, "psnr") is None and interpolate(points, 0.5, "psnr") is None


def test_equal_rate_compares_image_by_image_at_the_models_rate():
    def row(codec, setting, image, bpp, psnr):
        return {"codec": codec, "setting": setting, "image": image, "bpp": bpp, "psnr": psnr, "ms_ssim": math.nan}

    rows = [row("gan:m", "C=8", "x", 0.02, 20.0), row("gan:m", "C=8", "y", 0.04, 22.0),
            row("jpeg", "q=1", "x", 0.01, 16.0), row("jpeg", "q=5", "x", 0.04, 22.0),
            row("jpeg", "q=1", "y", 0.05, 23.0)]  # on y, JPEG cannot go down to 0.04 bpp
    (result,) = equal_rate(rows)
    assert (result["rate_of"], result["codec"], result["bpp"]) == ("gan:m", "jpeg", pytest.approx(0.03))
    assert result["psnr_images"] == 1 and result["psnr"] == pytest.approx(19.0)  # halfway in log(bpp) on x
    assert result["psnr_learned"] == 20.0  # the model's own PSNR on the same images
    assert result["ms_ssim_images"] == 0 and math.isnan(result["ms_ssim"])


def test_measure_covers_every_codec_setting_and_image(images, compression_checkpoint):
    qualities = {"jpeg": (5, 50), "webp": (10,)}
    rows = measure(sorted(images.iterdir()), [compression_checkpoint], qualities, scales=(1, 4))
    assert len(rows) == 2 * (1 + (2 + 1) * 2)
    jpeg = {r["setting"]: r for r in rows if r["codec"] == "jpeg" and r["image"] == "coffee.png"}
    assert set(jpeg) == {"q=5", "q=50", "q=5,scale=1/4", "q=50,scale=1/4"}
    assert jpeg["q=5"]["bpp"] < jpeg["q=50"]["bpp"] and jpeg["q=5"]["psnr"] < jpeg["q=50"]["psnr"]
    assert jpeg["q=5,scale=1/4"]["bpp"] < jpeg["q=5"]["bpp"] and jpeg["q=5,scale=1/4"]["scale"] == 4
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
    result = run_cli("rd", "--ckpt", str(compression_checkpoint), "--jpeg", "10,50", "--webp", "10", "--avif", "",
                     "--scales", "1,8", "--out", str(out), str(images), timeout=300)
    assert result.returncode == 0, result.stderr
    with open(out / "rd.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * (1 + 3 * 2)
    document = json.loads((out / "rd.json").read_text())
    assert len(document["averages"]) == 7
    assert {c["codec"] for c in document["equal_rate"]} == {"jpeg", "webp"}
    assert set(document["fronts"]["jpeg"]) == {"psnr", "ms_ssim"}
    assert "at gan:compression's" in result.stdout
    with Image.open(out / "rd.png") as plot:
        assert plot.size[0] > 500


def test_without_avif_the_command_says_so_and_goes_on(tmp_path, images, monkeypatch, capsys):
    monkeypatch.setattr(rd, "available", lambda codec: codec != "avif")
    monkeypatch.setattr(sys, "argv", ["ganforge rd", "--jpeg", "10", "--webp", "", "--avif", "30", "--scales", "1",
                                      "--out", str(tmp_path / "rd"), str(images / "cat.png")])
    rd.main()
    printed = capsys.readouterr().out
    assert "note: this Pillow cannot write AVIF" in printed and len(printed.splitlines()[0]) < 130
    rows = json.loads((tmp_path / "rd" / "rd.json").read_text())["rows"]
    assert [(r["codec"], r["setting"]) for r in rows] == [("jpeg", "q=10")]


def test_a_bad_sweep_ends_in_one_line(tmp_path, images, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ganforge rd", "--scales", "0,2", "--out", str(tmp_path / "rd"), str(images)])
    with pytest.raises(SystemExit) as exit_:
        rd.main()
    error = capsys.readouterr().err
    assert exit_.value.code != 0 and error.strip() == "error: --scales takes integers of at least 1, got '0,2'"
    assert not (tmp_path / "rd").exists()
