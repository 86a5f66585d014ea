import struct
import zlib

import numpy as np
import pytest

from ganforge.codec import CodecError, Header, pack, unpack

HEADER = Header(height=37, width=53, channels=4, centers=(-2.0, -1.0, 0.0, 1.0, 2.0), fingerprint=b"f" * 16,
                noise=True, seed=12345, checkpoint="/runs/model.ckpt")


def test_pack_and_unpack_round_trip():
    payload = np.arange(7, dtype=np.uint32) * 1000003
    header, words = unpack(pack(HEADER, payload))
    assert header == HEADER
    assert np.array_equal(words, payload)
    assert header.latent_shape == (4, 3, 4)  # 37x53 rounds up to 48x64: 3x4 latents


@pytest.mark.parametrize("coder", [1, 2])
def test_the_coder_is_kept_in_the_header(coder):
    header, _ = unpack(pack(Header(**{**HEADER.__dict__, "coder": coder}), np.zeros(1, dtype=np.uint32)))
    assert header.coder == coder


def test_new_files_are_written_with_the_adaptive_coder():
    assert unpack(pack(HEADER, np.zeros(1, dtype=np.uint32)))[0].coder == 2


def reseal(body: bytes) -> bytes:
    """Replace the trailing CRC so that only the field under test is wrong."""
    return body[:-4] + struct.pack("<I", zlib.crc32(body[:-4]))


@pytest.mark.parametrize("mutate, words", [
    (lambda b: b"PNG!" + b[4:], "not a ganforge compressed file"),
    (lambda b: reseal(b[:4] + bytes([2]) + b[5:]), "format version 2; this ganforge reads version 1"),
    (lambda b: reseal(b[:5] + bytes([9]) + b[6:]), "coder 9, which this ganforge does not know (it reads coders 1 and 2)"),
    (lambda b: b[:30], "truncated"),
    (lambda b: b[:-9], "truncated"),
    (lambda b: b + b"extra", "extra bytes"),
    (lambda b: b[:-12] + bytes([b[-12] ^ 1]) + b[-11:], "checksum does not match"),
    (lambda b: reseal(b[:10] + struct.pack("<II", 1 << 16, 1 << 16) + b[18:]), "damaged: its header says 65536x65536"),
    (lambda b: reseal(b[:6] + struct.pack("<H", 0) + b[8:]), "0 channels"),
])
def test_bad_files_are_refused_with_one_line(mutate, words):
    data = pack(HEADER, np.arange(7, dtype=np.uint32))
    with pytest.raises(CodecError) as error:
        unpack(mutate(data), "photo.gfc")
    assert words in str(error.value) and "\n" not in str(error.value)
