import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganforge.cli.compress import load_compression_task
from ganforge.codec import CodecError, unpack
from ganforge.codec.entropy import decode_symbols, default_coder
from ganforge.codec.image import ImageCodec
from ganforge.data import sample_photo


@pytest.fixture(scope="module")
def codec(compression_checkpoint):
    return ImageCodec(load_compression_task(compression_checkpoint), checkpoint=str(compression_checkpoint))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return sample_photo("coffee")[::4, ::4][:67, :93].copy()  # a size that is no multiple of 16


def test_decoded_symbols_equal_the_encoded_ones(codec, photo):
    data = codec.compress(photo)
    header, words = unpack(data)
    x = torch.from_numpy(np.pad(photo, ((0, 80 - 67), (0, 96 - 93), (0, 0)), mode="reflect")).permute(2, 0, 1)
    with torch.no_grad():
        expected = codec.model.quantizer.indices(codec.model.encode(x.float().div(255).unsqueeze(0) * 2 - 1))[0]
    decoded = decode_symbols(words, codec.probabilities, header.latent_shape)
    assert np.array_equal(decoded, expected.numpy())


def test_any_size_round_trips_and_decoding_twice_is_identical(codec, photo):
    data = codec.compress(photo)
    first, second = codec.decompress(data), codec.decompress(data)
    assert first.shape == photo.shape and first.dtype == np.uint8
    assert np.array_equal(first, second)


def test_both_coders_carry_the_same_symbols_and_files_of_either_decode(codec, photo):
    new, old = codec.compress(photo), codec.compress(photo, coder=1)
    assert unpack(new)[0].coder == 2 and unpack(old)[0].coder == 1
    assert np.array_equal(codec.decompress(new), codec.decompress(old))


def test_a_header_that_disagrees_with_the_model_is_refused(codec, photo):
    import struct
    import zlib

    data = bytearray(codec.compress(photo))
    data[6:8] = struct.pack("<H", 5)  # C: the model has 4
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    with pytest.raises(CodecError, match="its header says 5 channels and 5 centers, its model has 4 and 5"):
        codec.decompress(bytes(data), "x.gfc")


def test_quantizers_with_dozens_of_centers_get_the_static_coder():
    assert default_coder(8, 5) == default_coder(220, 7) == 2
    assert default_coder(512, 32) == 1  # 512 * 33^2 * 32 counts: 136 M, over a gigabyte


def test_the_file_is_no_larger_than_the_bound_plus_the_header(codec, photo):
    data = codec.compress(photo)
    header_bytes = len(data) - 4 * unpack(data)[1].size
    latent_symbols = np.prod(unpack(data)[0].latent_shape)
    bound_bits = latent_symbols * np.log2(codec.centers.numel())
    assert 8 * (len(data) - header_bytes) <= bound_bits + 64


def test_noise_is_seeded_from_the_file(noisy_checkpoint, photo):
    codec = ImageCodec(load_compression_task(noisy_checkpoint))
    a = codec.compress(photo, seed=1)
    assert np.array_equal(codec.decompress(a), codec.decompress(a))
    b = codec.compress(photo, seed=2)
    assert not np.array_equal(codec.decompress(a), codec.decompress(b))


def test_a_file_from_another_model_is_refused(codec, noisy_checkpoint, photo):
    other = ImageCodec(load_compression_task(noisy_checkpoint))
    with pytest.raises(CodecError, match="made by another model"):
        codec.decompress(other.compress(photo), "x.gfc")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_ends_in_a_clean_error_or_a_valid_image(codec, photo, data):
    original = bytearray(codec.compress(photo))
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
    position = data.draw(st.integers(0, len(original) - 1))
    if kind == "flip":
        original[position] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        del original[position:]
    elif kind == "insert":
        original[position:position] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        chunk = data.draw(st.binary(min_size=1, max_size=16))
        original[position : position + len(chunk)] = chunk
    try:
        image = codec.decompress(bytes(original))
    except CodecError as error:
        assert "\n" not in str(error)
    else:
        assert image.shape == photo.shape and image.dtype == np.uint8
