"""Golden files (tests/golden, see its README.md): .gfc files written by earlier ganforge
must decode to the same pixels, and compressing the same image again must give the same
bytes, so that a change that breaks old files cannot land unnoticed."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.cli.compress import load_compression_task
from ganforge.codec import decode_symbols, unpack
from ganforge.codec.image import ImageCodec
from ganforge.data.images import load_rgb
from tests.cli.helpers import run_cli

TESTS = Path(__file__).resolve().parents[1]
GOLDEN = TESTS / "golden"
SIZES = {"astronaut_64x64": (64, 64), "chelsea_53x37": (37, 53), "coffee_192x128": (128, 192)}  # (height, width)
FILES = {".gfc": 2, ".coder1.gfc": 1}  # suffix -> the coder it was written with


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec(load_compression_task(GOLDEN / "golden.ckpt"), checkpoint="golden.ckpt")


def same_pixels(decoded: np.ndarray, expected: np.ndarray) -> bool:
    """The stored pixels, up to float rounding in the generator: the symbols (checked exactly
    elsewhere) are the file's content; the pixels come from float convolutions, and torch's
    SSE4.1 kernels were seen to round one pixel of these images by 1 where its AVX2 and
    AVX-512 ones agree. So: at most 1 level apart, in at most 0.5 % of the pixels."""
    if decoded.shape != expected.shape:
        return False
    apart = np.abs(decoded.astype(int) - expected.astype(int))
    return int(apart.max()) <= 1 and float(apart.any(axis=-1).mean()) <= 0.005


def differences(decoded: np.ndarray, expected: np.ndarray) -> str:
    if decoded.shape != expected.shape:
        return f"decoded {decoded.shape}, stored {expected.shape}"
    differ = decoded != expected
    largest = int(np.abs(decoded.astype(int) - expected.astype(int)).max())
    return f"{int(differ.any(axis=-1).sum())} of {differ.shape[0] * differ.shape[1]} pixels differ, by up to {largest}"


@pytest.mark.parametrize("suffix", FILES)
@pytest.mark.parametrize("name", SIZES)
def test_golden_files_decode_to_the_stored_pixels(codec, name, suffix):
    data = (GOLDEN / f"{name}{suffix}").read_bytes()
    header, _ = unpack(data)
    assert (header.coder, header.checkpoint, (header.height, header.width)) == (FILES[suffix], "golden.ckpt",
                                                                               SIZES[name])
    decoded = codec.decompress(data, name)
    expected = np.asarray(Image.open(GOLDEN / f"{name}.decoded.png").convert("RGB"))
    assert same_pixels(decoded, expected), differences(decoded, expected)


@pytest.mark.parametrize("name", SIZES)
def test_both_coders_carry_the_same_symbols(codec, name):
    symbols = []
    for suffix, coder in FILES.items():
        header, words = unpack((GOLDEN / f"{name}{suffix}").read_bytes())
        symbols.append(decode_symbols(words, codec.probabilities, header.latent_shape, coder))
    assert np.array_equal(*symbols)
    assert len(np.unique(symbols[0])) >= 3  # the golden model uses several centers, not one


@pytest.mark.parametrize("suffix", FILES)
@pytest.mark.parametrize("name", SIZES)
def test_compressing_again_gives_the_same_bytes(codec, name, suffix):
    image = load_rgb(GOLDEN / f"{name}.png")
    assert codec.compress(image, seed=0, coder=FILES[suffix]) == (GOLDEN / f"{name}{suffix}").read_bytes()


def test_decompress_with_ckpt_restores_the_golden_folder(tmp_path):
    # The files name "golden.ckpt", which is not here: --ckpt says which checkpoint to use.
    result = run_cli("decompress", "--ckpt", str(GOLDEN / "golden.ckpt"), str(GOLDEN), str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    for name in SIZES:
        expected = np.asarray(Image.open(GOLDEN / f"{name}.decoded.png").convert("RGB"))
        for suffix in FILES:
            decoded = np.asarray(Image.open(tmp_path / Path(name + suffix).with_suffix(".png")))
            assert same_pixels(decoded, expected), differences(decoded, expected)


def test_a_checkpoint_from_before_coder_2_compresses_with_it(tmp_path):
    codec = ImageCodec(load_compression_task(TESTS / "legacy" / "compression_4e4f7ed.ckpt"))
    image = load_rgb(GOLDEN / "chelsea_53x37.png")
    data = codec.compress(image)
    assert unpack(data)[0].coder == 2
    assert np.array_equal(codec.decompress(data), codec.decompress(codec.compress(image, coder=1)))
