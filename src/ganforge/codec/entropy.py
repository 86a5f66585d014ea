"""Entropy coding of quantizer symbols with `constriction`'s ANS coder.

Both coders start from the statistics of training: for each latent channel and each
value of the symbol directly above (or "none" in the first row), how often each of the
L symbols occurred during the last training epoch (`CompressionTask.symbol_counts`,
shape (C, L + 1, L)), add-one smoothed so that no symbol is impossible.

Coder 1 (static): P(symbol | channel, symbol above), fixed by training. Symbols are coded
row by row, each row holding every channel: a decoder knows the row above before it
decodes a row, so each row is decoded in one call.

Coder 2 (adaptive, the default): counts n[channel, above, left, symbol] that start as
the training distribution of (channel, above) weighted as `PRIOR_SYMBOLS` symbols, and
grow by one symbol for each symbol coded (the classic adaptive context model of
JBIG / CALIC-style coders, here over the latent). The image's own statistics soon
outweigh the training crops', which come from smaller, downscaled images. A symbol's
left and above neighbours are both known once the anti-diagonal before it is decoded, so
the scan goes by anti-diagonals (row + column = t), every channel of a diagonal in one
call; the counts are updated after each diagonal, identically in encoder and decoder.
Counts are integers (the prior in units of 1 / `INCREMENT` symbol), so probabilities
are the same on every machine.

On the nine bundled photos with the CPU demo model (bench/codec.py, 2026-12-02): 1.51
bits per symbol with coder 1 and 1.11 with coder 2 (log2 5 = 2.32 without a model; the
same adaptive counts given the symbol above only: 1.30).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "CODER_ABOVE",
    "CODER_ADAPTIVE",
    "CODER_ID",
    "CODERS",
    "INCREMENT",
    "PRIOR_SYMBOLS",
    "adaptive_scan",
    "adaptive_stream",
    "default_coder",
    "decode_symbols",
    "encode_symbols",
    "probabilities_from_counts",
    "symbol_bits",
]

CODER_ABOVE = 1  # static: categorical given the channel and the symbol above (training counts)
CODER_ADAPTIVE = 2  # adaptive counts given the channel, the symbol above and the symbol to the left
CODER_ID = CODER_ADAPTIVE  # what new files are written with
CODERS = {
    CODER_ABOVE: "static, given the channel and the symbol above",
    CODER_ADAPTIVE: "adaptive, given the channel, the symbol above and the symbol to the left",
}
MAX_ADAPTIVE_COUNTS = 1 << 24  # entries of coder 2's count table, C (L + 1)^2 L: 128 MiB of float64
INCREMENT = 16  # a coded symbol adds this much to its context's count
PRIOR_SYMBOLS = 5  # the training distribution of a context weighs as much as this many coded symbols


def default_coder(channels: int, levels: int) -> int:
    """The coder new files get: coder 2, unless its count table would pass
    MAX_ADAPTIVE_COUNTS entries (quantizers with dozens of centers), then coder 1."""
    return CODER_ADAPTIVE if channels * (levels + 1) ** 2 * levels <= MAX_ADAPTIVE_COUNTS else CODER_ABOVE


def probabilities_from_counts(counts: np.ndarray) -> np.ndarray:
    """(C, L + 1, L) symbol counts -> probabilities of the same shape (over the last
    axis), add-one smoothed."""
    counts = np.asarray(counts, dtype=np.float64) + 1.0
    return counts / counts.sum(axis=-1, keepdims=True)


def _model():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


# --- coder 1: static, given the symbol above -------------------------------------------------


def _row_probabilities(probabilities: np.ndarray, above: np.ndarray) -> np.ndarray:
    """(C, W) symbols of the row above (L: none) -> (C * W, L) probabilities."""
    channels = np.arange(above.shape[0])[:, None]
    return probabilities[channels, above].reshape(-1, probabilities.shape[-1])


def _first_row_context(probabilities: np.ndarray, width: int) -> np.ndarray:
    channels, levels_plus_one, _ = probabilities.shape
    return np.full((channels, width), levels_plus_one - 1, dtype=np.int64)


def _static_rows(symbols: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coder 1's stream: (C, h, w) symbols -> (symbols in coding order, their (n, L) probabilities)."""
    _, height, width = symbols.shape
    above = np.concatenate([_first_row_context(probabilities, width)[:, None], symbols[:, :-1]], axis=1)
    rows = [_row_probabilities(probabilities, above[:, r]) for r in range(height)]
    return symbols.transpose(1, 0, 2).reshape(-1), np.concatenate(rows)  # row by row, channels within a row


def _decode_static(coder, probabilities: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    channels, height, width = shape
    symbols = np.empty(shape, dtype=np.int64)
    above = _first_row_context(probabilities, width)
    for r in range(height):
        row = np.asarray(coder.decode(_model(), _row_probabilities(probabilities, above)), dtype=np.int64)
        # A damaged payload can decode to anything; keep the contexts in range for the next row.
        symbols[:, r] = above = np.clip(row, 0, probabilities.shape[-1] - 1).reshape(channels, width)
    return symbols


# --- coder 2: adaptive, given the symbols above and to the left ------------------------------


def _scan(shape: tuple[int, int, int], left: bool) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """The scan order: flat indices into the (C, h + 1, w + 1) padded grid (row 0 and
    column 0: "none"), each one's channel, and the (start, stop) of each step in them.
    Steps are anti-diagonals with `left` (channel, then row, ascending within a diagonal),
    rows without (channel, then column)."""
    channels, height, width = shape
    c, r, w = np.meshgrid(np.arange(channels), np.arange(height), np.arange(width), indexing="ij")
    step = (r + w if left else r).ravel()
    order = np.argsort(step, kind="stable")  # equal steps keep the (channel, row, column) order
    flat = ((c * (height + 1) + r + 1) * (width + 1) + w + 1).ravel()[order]
    sizes = np.bincount(step)
    stops = np.cumsum(sizes).tolist()
    return flat, c.ravel()[order], list(zip([0] + stops[:-1], stops))


def adaptive_scan(probabilities: np.ndarray, shape: tuple[int, int, int],
                  next_symbols: Callable[[np.ndarray], np.ndarray], left: bool = True) -> np.ndarray:
    """Runs the adaptive context model over a (C, h, w) latent, step by step.

    next_symbols(counts (n, L) float64) -> the step's n symbols in [0, L): the encoder
    looks them up, the decoder decodes them with the counts as (unnormalized)
    probabilities. left=True is coder 2 (context: channel, above, left); left=False is
    the same model with the symbol above only (for comparison in bench/codec.py).
    Returns (C, h, w) int64.
    """
    channels, height, width = shape
    levels = probabilities.shape[-1]
    grid = np.full((channels, height + 1, width + 1), levels, dtype=np.int64)  # levels: "none"
    flat_grid = grid.reshape(-1)
    # n[channel, above, left, symbol] in units of 1 / INCREMENT symbol: the prior floored
    # to whole units, at least 1. Whole numbers in float64 are exact, and constriction
    # takes them as unnormalized probabilities.
    prior = np.maximum(1.0, np.floor(probabilities * (PRIOR_SYMBOLS * INCREMENT)))
    lefts = levels + 1 if left else 1
    counts = np.repeat(prior[:, :, None, :], lefts, axis=2).reshape(-1, levels)
    flat_counts = counts.reshape(-1)
    positions, channels_in_order, steps = _scan(shape, left)
    above_of, channel_base = positions - (width + 1), channels_in_order * ((levels + 1) * lefts)
    for start, stop in steps:
        context = channel_base[start:stop] + flat_grid.take(above_of[start:stop]) * lefts
        if left:
            context += flat_grid.take(positions[start:stop] - 1)
        # constriction's categorical decodes only symbols in [0, L), even from damaged data.
        symbols = np.asarray(next_symbols(counts.take(context, axis=0)), dtype=np.int64)
        flat_grid[positions[start:stop]] = symbols
        flat_counts += np.bincount(context * levels + symbols, minlength=flat_counts.size) * float(INCREMENT)
    return grid[:, 1:, 1:]


def adaptive_stream(symbols: np.ndarray, probabilities: np.ndarray, left: bool = True):
    """(symbols in coding order, their (n, L) unnormalized probabilities) of the adaptive model."""
    padded = np.full((symbols.shape[0], symbols.shape[1] + 1, symbols.shape[2] + 1), -1, dtype=np.int64)
    padded[:, 1:, 1:] = symbols
    flat, ordered, tables = padded.reshape(-1), [], []
    positions, _, steps = _scan(symbols.shape, left)
    steps = iter(steps)

    def look_up(counts: np.ndarray) -> np.ndarray:
        start, stop = next(steps)
        step_symbols = flat[positions[start:stop]]
        ordered.append(step_symbols)
        tables.append(counts)
        return step_symbols

    adaptive_scan(probabilities, symbols.shape, look_up, left)
    return np.concatenate(ordered), np.concatenate(tables)


# --- the coders -------------------------------------------------------------------------------


def _stream(symbols: np.ndarray, probabilities: np.ndarray, coder: int) -> tuple[np.ndarray, np.ndarray]:
    symbols = np.asarray(symbols, dtype=np.int64)
    if coder == CODER_ABOVE:
        return _static_rows(symbols, probabilities)
    if coder == CODER_ADAPTIVE:
        return adaptive_stream(symbols, probabilities)
    raise ValueError(f"unknown coder {coder}: the coders are {sorted(CODERS)}")


def encode_symbols(symbols: np.ndarray, probabilities: np.ndarray, coder: int = CODER_ID) -> np.ndarray:
    """(C, h, w) ints in [0, L) -> the compressed words (uint32), with `coder`."""
    import constriction

    ordered, tables = _stream(symbols, probabilities, coder)
    encoder = constriction.stream.stack.AnsCoder()
    encoder.encode_reverse(ordered.astype(np.int32), _model(), tables)
    return encoder.get_compressed()


def decode_symbols(words: np.ndarray, probabilities: np.ndarray, shape: tuple[int, int, int],
                   coder: int = CODER_ID) -> np.ndarray:
    """The inverse of `encode_symbols`: (C, h, w) int32 symbols."""
    import constriction

    decoder = constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, dtype=np.uint32))
    if coder == CODER_ABOVE:
        symbols = _decode_static(decoder, probabilities, shape)
    elif coder == CODER_ADAPTIVE:
        model = _model()
        symbols = adaptive_scan(probabilities, shape, lambda counts: decoder.decode(model, counts))
    else:
        raise ValueError(f"unknown coder {coder}: the coders are {sorted(CODERS)}")
    return symbols.astype(np.int32)


def symbol_bits(symbols: np.ndarray, probabilities: np.ndarray, coder: int = CODER_ID) -> float:
    """The ideal code length in bits, sum of -log2 P(symbol), of (C, h, w) symbols under
    `coder`'s model: what an exact arithmetic coder would spend (ANS adds a few words)."""
    ordered, tables = _stream(symbols, probabilities, coder)
    chosen = tables[np.arange(ordered.size), ordered] / tables.sum(axis=1)
    return float(-np.log2(chosen).sum())
