"""Entropy coding of quantizer symbols with `constriction`'s ANS coder.

The probability model: for each latent channel, the frequency of each of the L symbols
over the last training epoch (`CompressionTask.symbol_counts`), with add-one smoothing so
that no symbol is impossible. Symbols (C, h, w) are coded channel by channel.
"""

from __future__ import annotations

import numpy as np

__all__ = ["probabilities_from_counts", "encode_symbols", "decode_symbols", "CODER_ID"]

CODER_ID = 1  # constriction.stream.stack.AnsCoder with a per-channel categorical model


def probabilities_from_counts(counts: np.ndarray) -> np.ndarray:
    """(C, L) symbol counts -> (C, L) float64 probabilities, add-one smoothed."""
    counts = np.asarray(counts, dtype=np.float64) + 1.0
    return counts / counts.sum(axis=1, keepdims=True)


def _model():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


def _per_symbol(probabilities: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    channels, height, width = shape
    return np.repeat(probabilities, height * width, axis=0)


def encode_symbols(symbols: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """(C, h, w) ints in [0, L) -> the compressed words (uint32)."""
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    flat = np.ascontiguousarray(symbols, dtype=np.int32).reshape(-1)
    coder.encode_reverse(flat, _model(), _per_symbol(probabilities, symbols.shape))
    return coder.get_compressed()


def decode_symbols(words: np.ndarray, probabilities: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The inverse of `encode_symbols`: (C, h, w) int32 symbols."""
    import constriction

    coder = constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, dtype=np.uint32))
    symbols = coder.decode(_model(), _per_symbol(probabilities, shape))
    return np.asarray(symbols, dtype=np.int32).reshape(shape)
