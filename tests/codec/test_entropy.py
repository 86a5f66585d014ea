"""The two symbol models of ganforge.codec.entropy against literal re-implementations."""

import math

import numpy as np
import pytest

from ganforge.codec.entropy import (
    CODER_ABOVE,
    CODER_ADAPTIVE,
    INCREMENT,
    PRIOR_SYMBOLS,
    decode_symbols,
    encode_symbols,
    probabilities_from_counts,
    symbol_bits,
)


def markov_rows(rng, probabilities: np.ndarray, height: int, width: int) -> np.ndarray:
    """Symbols drawn row by row from P(symbol | channel, symbol above)."""
    channels, contexts, levels = probabilities.shape
    symbols = np.empty((channels, height, width), dtype=np.int32)
    for c in range(channels):
        above = np.full(width, contexts - 1)
        for r in range(height):
            symbols[c, r] = above = [rng.choice(levels, p=probabilities[c, a]) for a in above]
    return symbols


def stripes(rng, channels: int, height: int, width: int, repeat: float = 0.85, levels: int = 5):
    """A field whose symbols repeat the one to their left with probability `repeat`
    (else uniform): the symbol above tells little, the one to the left a lot. Returns the
    symbols and their code length in bits under the true model."""
    symbols = np.empty((channels, height, width), dtype=np.int64)
    bits = 0.0
    for c in range(channels):
        for r in range(height):
            for w in range(width):
                uniform = rng.integers(levels)
                if w and rng.random() < repeat:
                    symbols[c, r, w] = symbols[c, r, w - 1]
                else:
                    symbols[c, r, w] = uniform
                if w:
                    same = symbols[c, r, w] == symbols[c, r, w - 1]
                    bits -= math.log2(repeat + (1 - repeat) / levels if same else (1 - repeat) / levels)
                else:
                    bits += math.log2(levels)
    return symbols, bits


def reference_adaptive_bits(symbols: np.ndarray, probabilities: np.ndarray) -> float:
    """Coder 2 as its docstring states it, one symbol at a time: counts per (channel,
    above, left) start at floor(P_train(s | channel, above) * PRIOR_SYMBOLS * INCREMENT),
    at least 1; anti-diagonals in order, channel then row within one; each coded symbol
    adds INCREMENT to its context's count once its diagonal is done."""
    channels, height, width = symbols.shape
    levels = probabilities.shape[-1]
    counts = {}

    def count(c, above, left):
        if (c, above, left) not in counts:
            counts[c, above, left] = [max(1, math.floor(probabilities[c, above, s] * PRIOR_SYMBOLS * INCREMENT))
                                      for s in range(levels)]
        return counts[c, above, left]

    bits = 0.0
    for diagonal in range(height + width - 1):
        seen = []
        for c in range(channels):
            for r in range(height):
                w = diagonal - r
                if not 0 <= w < width:
                    continue
                above = symbols[c, r - 1, w] if r else levels
                left = symbols[c, r, w - 1] if w else levels
                n, s = count(c, above, left), symbols[c, r, w]
                bits -= math.log2(n[s] / sum(n))
                seen.append((c, above, left, s))
        for c, above, left, s in seen:
            count(c, above, left)[s] += INCREMENT
    return bits


@pytest.fixture
def sticky() -> np.ndarray:
    """P(symbol | channel, above) for 2 channels and L = 5: one mostly repeats the symbol
    above, one is uniform."""
    repeat = np.full((6, 5), 0.05) + 0.75 * np.eye(6, 5)
    repeat[5] = [0.05, 0.2, 0.5, 0.2, 0.05]
    return np.stack([repeat / repeat.sum(1, keepdims=True), np.full((6, 5), 0.2)])


@pytest.mark.parametrize("coder", [CODER_ABOVE, CODER_ADAPTIVE])
def test_coding_is_exact_and_reaches_the_model_cross_entropy(sticky, coder):
    symbols = markov_rows(np.random.default_rng(0), sticky, 30, 40)
    words = encode_symbols(symbols, sticky, coder)
    assert np.array_equal(decode_symbols(words, sticky, symbols.shape, coder), symbols)
    bits = symbol_bits(symbols, sticky, coder)
    assert 32 * words.size <= bits * 1.01 + 64


def test_the_static_coder_is_the_training_distribution_given_the_symbol_above(sticky):
    symbols = markov_rows(np.random.default_rng(1), sticky, 12, 9)
    above = np.concatenate([np.full((2, 1, 9), 5), symbols[:, :-1]], axis=1)
    expected = -np.log2(sticky[np.arange(2)[:, None, None], above, symbols]).sum()
    assert symbol_bits(symbols, sticky, CODER_ABOVE) == pytest.approx(expected, rel=1e-12)


def test_the_adaptive_coder_is_the_model_its_docstring_states(sticky):
    symbols = markov_rows(np.random.default_rng(2), sticky, 11, 17)
    assert symbol_bits(symbols, sticky, CODER_ADAPTIVE) == pytest.approx(reference_adaptive_bits(symbols, sticky),
                                                                         rel=1e-12)


def test_the_adaptive_coder_learns_what_training_did_not_see():
    # Training said "uniform, whatever is above"; the image repeats its left neighbours.
    uniform = probabilities_from_counts(np.zeros((4, 6, 5)))
    excess = []
    for side in (24, 96):
        symbols, true_bits = stripes(np.random.default_rng(3), 4, side, side)
        static = 32 * encode_symbols(symbols, uniform, CODER_ABOVE).size
        adaptive = 32 * encode_symbols(symbols, uniform, CODER_ADAPTIVE).size
        assert static == pytest.approx(symbols.size * math.log2(5), rel=0.01)
        assert true_bits < adaptive < static
        excess.append((adaptive - true_bits) / symbols.size)
    # The price of learning 4 * 36 contexts is paid once: per symbol it shrinks with the
    # image, and at 96 x 96 the coder is within 10 % of the true model.
    assert excess[1] < excess[0] / 4
    assert excess[1] < 0.1 * true_bits / symbols.size


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 1, 7), (2, 9, 1), (4, 5, 6)])
def test_every_latent_shape_round_trips(shape):
    rng = np.random.default_rng(4)
    probabilities = probabilities_from_counts(rng.integers(0, 50, (shape[0], 8, 7)))
    symbols = rng.integers(0, 7, shape)
    for coder in (CODER_ABOVE, CODER_ADAPTIVE):
        words = encode_symbols(symbols, probabilities, coder)
        assert np.array_equal(decode_symbols(words, probabilities, shape, coder), symbols)


def test_a_damaged_payload_decodes_to_symbols_in_range():
    rng = np.random.default_rng(5)
    probabilities = probabilities_from_counts(rng.integers(0, 50, (3, 6, 5)))
    words = rng.integers(0, 2**32, 9, dtype=np.uint64).astype(np.uint32)
    words[-1] |= 1  # constriction refuses a stream whose last word is 0
    for coder in (CODER_ABOVE, CODER_ADAPTIVE):
        symbols = decode_symbols(words, probabilities, (3, 8, 10), coder)
        assert symbols.min() >= 0 and symbols.max() < 5


def test_add_one_smoothing_keeps_every_symbol_possible():
    probabilities = probabilities_from_counts(np.array([[[0, 10, 0], [3, 3, 3]]]))
    assert np.allclose(probabilities, [[[1 / 13, 11 / 13, 1 / 13], [1 / 3, 1 / 3, 1 / 3]]])
