"""Entropy coding of the quantized latent and the compressed file format."""

from ganforge.codec.entropy import decode_symbols, encode_symbols, probabilities_from_counts
from ganforge.codec.format import FORMAT_VERSION, MAGIC, CodecError, Header, pack, unpack

__all__ = [
    "decode_symbols",
    "encode_symbols",
    "probabilities_from_counts",
    "FORMAT_VERSION",
    "MAGIC",
    "CodecError",
    "Header",
    "pack",
    "unpack",
]
