"""`ganforge compress` / `ganforge decompress` as a user runs them."""

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.data import sample_photo
from tests.cli.helpers import run_cli


def ganforge(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=300)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    Image.fromarray(sample_photo("chelsea")[::2, ::2]).save(folder / "cat.png")
    Image.fromarray(sample_photo("rocket")[::3, ::3]).save(folder / "nested" / "rocket.jpg", quality=95)
    return folder


def test_compress_and_decompress_a_file_reporting_real_bpp(tmp_path, photos, compression_checkpoint):
    packed, restored = tmp_path / "cat.gfc", tmp_path / "cat.png"
    result = ganforge("compress", "--ckpt", str(compression_checkpoint), str(photos / "cat.png"), str(packed))
    assert result.returncode == 0, result.stderr
    pixels = 150 * 226
    bound = 4 * math.log2(5) / 256  # C * log2(L) / 16^2
    assert f"{8 * packed.stat().st_size / pixels:.4f} bpp (bound {bound:.4f})" in result.stdout
    result = ganforge("decompress", str(packed), str(restored))  # the checkpoint named in the file
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(restored)).shape == (150, 226, 3)


def test_folders_keep_their_layout(tmp_path, photos, compression_checkpoint):
    result = ganforge("compress", "--ckpt", str(compression_checkpoint), str(photos), str(tmp_path / "gfc"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(tmp_path / "gfc").as_posix() for p in (tmp_path / "gfc").rglob("*.gfc")) == [
        "cat.gfc", "nested/rocket.gfc"]
    assert "2 images:" in result.stdout
    result = ganforge("decompress", "--ckpt", str(compression_checkpoint), str(tmp_path / "gfc"), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "nested" / "rocket.png").is_file()


@pytest.mark.parametrize("case", ["missing checkpoint", "pix2pix checkpoint", "truncated checkpoint",
                                  "unreadable image", "empty folder", "not a gfc", "truncated gfc",
                                  "output under a file"])
def test_mistakes_end_in_one_line_and_leave_nothing_behind(tmp_path, photos, case, compression_checkpoint,
                                                           pix2pix_checkpoint):
    from ganforge.cli.compress import load_compression_task
    from ganforge.codec.image import ImageCodec

    ckpt = str(compression_checkpoint)
    image, output = str(photos / "cat.png"), tmp_path / "out.gfc"
    good = tmp_path / "good.gfc"
    good.write_bytes(ImageCodec(load_compression_task(ckpt)).compress(np.asarray(Image.open(image))))
    if case == "missing checkpoint":
        args, words = ["compress", "--ckpt", str(tmp_path / "none.ckpt"), image, str(output)], "checkpoint not found"
    elif case == "pix2pix checkpoint":
        args, words = ["compress", "--ckpt", str(pix2pix_checkpoint), image, str(output)], "is a pix2pix checkpoint"
    elif case == "truncated checkpoint":
        broken = tmp_path / "broken.ckpt"
        broken.write_bytes(Path(ckpt).read_bytes()[:5000])
        args, words = ["compress", "--ckpt", str(broken), image, str(output)], "cannot read checkpoint"
    elif case == "unreadable image":
        bad = tmp_path / "bad.png"
        bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        args, words = ["compress", "--ckpt", ckpt, str(bad), str(output)], "cannot read image"
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        args, words = ["compress", "--ckpt", ckpt, str(tmp_path / "empty"), str(tmp_path / "o")], "no input files"
    elif case == "not a gfc":
        output = tmp_path / "out.png"
        args, words = ["decompress", "--ckpt", ckpt, image, str(output)], "is not a ganforge compressed file"
    elif case == "truncated gfc":
        short = tmp_path / "short.gfc"
        short.write_bytes(good.read_bytes()[:-10])
        output = tmp_path / "out.png"
        args, words = ["decompress", "--ckpt", ckpt, str(short), str(output)], "truncated"
    else:
        output = good / "out.gfc"  # a path through a file: no folder can be made there
        args, words = ["compress", "--ckpt", ckpt, image, str(output)], "cannot write"
    result = ganforge(*args)
    assert result.returncode != 0
    assert words in result.stderr and "Traceback" not in result.stderr
    assert not output.exists()
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temporary file left behind
