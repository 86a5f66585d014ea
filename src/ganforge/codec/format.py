"""The compressed file format (.gfc), version 1. All integers are little-endian.

    offset  size    field
    0       4       magic b"GFC\\x1a"
    4       1       format version (1)
    5       1       coder, the probability model of the ANS-coded symbols (ganforge.codec.entropy):
                    1: static, given the channel and the symbol above; rows in order
                    2: adaptive, given the channel, the symbols above and to the left;
                       anti-diagonals in order (what ganforge writes)
    6       2       C, latent channels (u16)
    8       1       L, quantizer centers (u8)
    9       1       flags (bit 0: the generator draws a noise map)
    10      4       image height in pixels (u32)
    14      4       image width in pixels (u32); the latent covers both rounded up to a
                    multiple of 16 (mirror padding, cropped away after decoding)
    18      4 L     the centers (float32)
    ..      16      fingerprint of the model weights (first 16 bytes of a SHA-256)
    ..      8       noise seed (u64)
    ..      2       n, length of the checkpoint path (u16)
    ..      n       checkpoint path (UTF-8) the file was made with
    ..      4       k, payload length in 32-bit words (u32)
    ..      4 k     payload: the ANS-coded symbols in the coder's scan order
    ..      4       CRC-32 of every byte before it

Sizes are checked against limits and against the file's length before anything is
allocated, so a damaged or hostile header cannot ask for a huge buffer.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ganforge.codec.entropy import CODER_ID, CODERS
from ganforge.errors import UserError

__all__ = ["MAGIC", "FORMAT_VERSION", "MAX_SIDE", "MAX_PIXELS", "CodecError", "Header", "pack", "unpack"]

MAGIC = b"GFC\x1a"
FORMAT_VERSION = 1
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
MAX_CHANNELS = 4096
_FIXED = struct.Struct("<4sBBHBBII")


class CodecError(UserError):
    """A compressed file that cannot be decoded: not ours, another version, damaged."""


@dataclass(frozen=True)
class Header:
    height: int
    width: int
    channels: int
    centers: tuple[float, ...]
    fingerprint: bytes
    coder: int = CODER_ID
    noise: bool = False
    seed: int = 0
    checkpoint: str = ""

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.channels, -(-self.height // 16), -(-self.width // 16)


def pack(header: Header, payload: np.ndarray) -> bytes:
    """The bytes of a .gfc file."""
    path = header.checkpoint.encode("utf-8")[:65535]
    parts = [
        _FIXED.pack(MAGIC, FORMAT_VERSION, header.coder, header.channels, len(header.centers),
                    int(header.noise), header.height, header.width),
        struct.pack(f"<{len(header.centers)}f", *header.centers),
        header.fingerprint[:16].ljust(16, b"\0"),
        struct.pack("<QH", header.seed, len(path)),
        path,
        struct.pack("<I", payload.size),
        np.ascontiguousarray(payload, dtype="<u4").tobytes(),
    ]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(data: bytes, name: str = "the file") -> tuple[Header, np.ndarray]:
    """Parse and check a .gfc file; raises CodecError with one line naming the problem."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise CodecError(f"{name} is not a ganforge compressed file (its first bytes are not {MAGIC!r})")
    if len(data) < _FIXED.size:
        raise CodecError(f"{name} is truncated: {len(data)} bytes, shorter than the header")
    _, version, coder, channels, count, flags, height, width = _FIXED.unpack_from(data, 0)
    if version != FORMAT_VERSION:
        raise CodecError(f"{name} is format version {version}; this ganforge reads version {FORMAT_VERSION}")
    if coder not in CODERS:
        known = " and ".join(map(str, sorted(CODERS)))
        raise CodecError(f"{name} was coded with coder {coder}, which this ganforge does not know (it reads coders "
                         f"{known}): decompress it with the ganforge version that wrote it")
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE and height * width <= MAX_PIXELS):
        raise CodecError(f"{name} is damaged: its header says {width}x{height} pixels")
    if not (0 < channels <= MAX_CHANNELS and 2 <= count):
        raise CodecError(f"{name} is damaged: its header says {channels} channels and {count} centers")
    offset = _FIXED.size
    need = offset + 4 * count + 16 + 10
    if len(data) < need + 8:
        raise CodecError(f"{name} is truncated: {len(data)} bytes")
    centers = struct.unpack_from(f"<{count}f", data, offset)
    offset += 4 * count
    fingerprint = data[offset : offset + 16]
    offset += 16
    seed, path_length = struct.unpack_from("<QH", data, offset)
    offset += 10
    if len(data) < offset + path_length + 8:
        raise CodecError(f"{name} is truncated: {len(data)} bytes")
    checkpoint = data[offset : offset + path_length].decode("utf-8", errors="replace")
    offset += path_length
    (words,) = struct.unpack_from("<I", data, offset)
    offset += 4
    if len(data) != offset + 4 * words + 4:
        raise CodecError(f"{name} is truncated or has extra bytes: {len(data)} bytes, "
                         f"the header says {offset + 4 * words + 4}")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise CodecError(f"{name} is damaged: its checksum does not match")
    payload = np.frombuffer(data, dtype="<u4", count=words, offset=offset).astype(np.uint32)
    header = Header(height, width, channels, tuple(centers), fingerprint, coder, bool(flags & 1), seed, checkpoint)
    return header, payload
