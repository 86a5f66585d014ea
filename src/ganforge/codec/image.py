"""Compressing an image to .gfc bytes and back with a trained CompressionTask."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ganforge.codec.entropy import decode_symbols, default_coder, encode_symbols, probabilities_from_counts
from ganforge.codec.format import CodecError, Header, pack, unpack
from ganforge.data.datasets import to_tensor
from ganforge.models.compression import DOWNSAMPLING
from ganforge.tasks.gan import pad_to_multiple

__all__ = ["ImageCodec", "model_fingerprint"]


def model_fingerprint(model: torch.nn.Module, probabilities: np.ndarray) -> bytes:
    """16 bytes that change with any weight, buffer or symbol probability."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(np.ascontiguousarray(probabilities, dtype=np.float64).tobytes())
    return digest.digest()[:16]


class ImageCodec:
    """`compress(image)` -> bytes and `decompress(bytes)` -> image, for uint8 RGB (H, W, 3)
    of any size, with the task's inference generator (its EMA if it has one) and the
    symbol statistics saved in its checkpoint (see ganforge.codec.entropy)."""

    def __init__(self, task, checkpoint: str = "") -> None:
        self.model = task.inference_generator.eval()
        self.checkpoint = checkpoint
        self.probabilities = probabilities_from_counts(task.symbol_counts.cpu().numpy())
        self.centers = self.model.quantizer.centers.detach().cpu()
        self.fingerprint = model_fingerprint(self.model, self.probabilities)
        self.bpp_bound = self.model.bpp_bound

    @torch.no_grad()
    def compress(self, image: np.ndarray, seed: int = 0, coder: int | None = None) -> bytes:
        """uint8 RGB (H, W, 3) -> the bytes of a .gfc file; coder: see ganforge.codec.entropy
        (None: `default_coder`, 2 for all but huge quantizers; 1 writes files that ganforge
        before coder 2 can read)."""
        height, width = image.shape[:2]
        x = to_tensor(image).unsqueeze(0) * 2 - 1
        padded, _ = pad_to_multiple({"image": x}, DOWNSAMPLING)
        symbols = self.model.quantizer.indices(self.model.encode(padded["image"]))[0].numpy()
        if coder is None:
            coder = default_coder(*self.probabilities.shape[::2])
        header = Header(
            height=height, width=width, channels=symbols.shape[0], centers=tuple(self.centers.tolist()),
            fingerprint=self.fingerprint, coder=coder, noise=self.model.noise is not None, seed=seed,
            checkpoint=self.checkpoint,
        )
        return pack(header, encode_symbols(symbols, self.probabilities, coder))

    @torch.no_grad()
    def decompress(self, data: bytes, name: str = "the file") -> np.ndarray:
        header, words = unpack(data, name)
        if header.fingerprint != self.fingerprint:
            raise CodecError(
                f"{name} was made by another model (or another checkpoint of it): pass the checkpoint it was "
                f"made with (--ckpt{' ' + header.checkpoint if header.checkpoint else ''})"
            )
        channels, _, levels = self.probabilities.shape
        if (header.channels, len(header.centers)) != (channels, levels):
            raise CodecError(f"{name} is damaged: its header says {header.channels} channels and {len(header.centers)} "
                             f"centers, its model has {channels} and {levels}")
        # decode_symbols keeps every symbol in [0, L), even from a payload the CRC let through.
        symbols = decode_symbols(words, self.probabilities, header.latent_shape, header.coder)
        w_bar = self.centers[torch.from_numpy(symbols).long()].unsqueeze(0)
        generator = torch.Generator().manual_seed(header.seed) if header.noise else None
        x_hat = self.model.decode(w_bar, generator)[0, :, : header.height, : header.width]
        return ((x_hat + 1) / 2 * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
