import struct
import zlib

import numpy as np
import pytest

from ganforge.codec import CodecError, Header, decode_symbols, encode_symbols, pack, probabilities_from_counts, unpack

HEADER = Header(height=37, width=53, channels=4, centers=(-2.0, -1.0, 0.0, 1.0, 2.0), fingerprint=b"f" * 16,
                noise=True, seed=12345, checkpoint="/runs/model.ckpt")


def test_pack_and_unpack_round_trip():
    payload = np.arange(7, dtype=np.uint32) * 1000003
    header, words = unpack(pack(HEADER, payload))
    assert header == HEADER
    assert np.array_equal(words, payload)
    assert header.latent_shape == (4, 3, 4)  # 37x53 rounds up to 48x64: 3x4 latents


def reseal(body: bytes) -> bytes:
    """Replace the trailing CRC so that only the field under test is wrong."""
    return body[:-4] + struct.pack("<I", zlib.crc32(body[:-4]))


@pytest.mark.parametrize("mutate, words", [
    (lambda b: b"PNG!" + b[4:], "not a ganforge compressed file"),
    (lambda b: reseal(b[:4] + bytes([2]) + b[5:]), "format version 2; this ganforge reads version 1"),
    (lambda b: reseal(b[:5] + bytes([9]) + b[6:]), "coded with coder 9"),
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


def markov_rows(rng, probabilities: np.ndarray, height: int, width: int) -> np.ndarray:
    """Symbols drawn row by row from P(symbol | channel, symbol above)."""
    channels, contexts, levels = probabilities.shape
    symbols = np.empty((channels, height, width), dtype=np.int32)
    for c in range(channels):
        above = np.full(width, contexts - 1)
        for r in range(height):
            symbols[c, r] = above = [rng.choice(levels, p=probabilities[c, a]) for a in above]
    return symbols


def test_entropy_coding_is_exact_and_reaches_the_model_cross_entropy():
    rng = np.random.default_rng(0)
    sticky = np.full((6, 5), 0.05) + 0.75 * np.eye(6, 5)  # mostly repeats the symbol above
    sticky[5] = [0.05, 0.2, 0.5, 0.2, 0.05]
    uniform = np.full((6, 5), 0.2)
    probabilities = np.stack([sticky / sticky.sum(1, keepdims=True), uniform])
    symbols = markov_rows(rng, probabilities, 30, 40)
    words = encode_symbols(symbols, probabilities)
    assert np.array_equal(decode_symbols(words, probabilities, symbols.shape), symbols)
    above = np.concatenate([np.full((2, 1, 40), 5), symbols[:, :-1]], axis=1)
    bits = -np.log2(probabilities[np.arange(2)[:, None, None], above, symbols]).sum()
    assert 32 * words.size <= bits * 1.01 + 64
    # The context pays: fewer bits than coding the sticky channel's symbols independently.
    assert bits < -np.log2(np.full(1, 0.2)).sum() * symbols.size


def test_add_one_smoothing_keeps_every_symbol_possible():
    probabilities = probabilities_from_counts(np.array([[[0, 10, 0], [3, 3, 3]]]))
    assert np.allclose(probabilities, [[[1 / 13, 11 / 13, 1 / 13], [1 / 3, 1 / 3, 1 / 3]]])
