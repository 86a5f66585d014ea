"""Entropy-coding speed, real rate and the symbol models of a compression checkpoint on the bundled photos.

    python bench/codec.py --ckpt outputs/runs/<date>/<time>/checkpoints/last.ckpt

For each photo: the network's time (encoder; generator); for each coder of the .gfc
format (1: static given the symbol above; 2: adaptive given above and left, what
ganforge writes) the real bits per pixel of the whole file against the bound
C * log2(L) / 256 and the coder's speed in megapixels of image per second (encode and
decode of the symbols alone, network excluded). Then the bits per symbol of each symbol
model on the same latents, side by side: the ideal code length sum(-log2 P) of each, and
the real payload of the two that are coders. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from ganforge.cli.compress import load_compression_task
from ganforge.codec import decode_symbols, encode_symbols, probabilities_from_counts, unpack
from ganforge.codec.entropy import CODER_ABOVE, CODER_ADAPTIVE, CODERS, adaptive_stream, symbol_bits
from ganforge.codec.image import ImageCodec
from ganforge.data.datasets import to_tensor
from ganforge.data.images import SAMPLE_PHOTOS, sample_photo
from ganforge.models.compression import DOWNSAMPLING
from ganforge.tasks.gan import pad_to_multiple

TARGET_BPP_OVER_BOUND = 0.60  # issue 17, for the default L = 5 demo model
TARGET_DECODE_MEGAPIXELS_PER_SECOND = 20.0


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def model_bits(symbols: np.ndarray, probabilities: np.ndarray, marginal: np.ndarray) -> dict[str, float]:
    """Ideal code length in bits of (C, h, w) symbols under each symbol model; marginal:
    (C, L) P(symbol | channel) of training."""
    channels, _, _ = symbols.shape
    levels = probabilities.shape[-1]
    ordered, tables = adaptive_stream(symbols, probabilities, left=False)
    above_adaptive = -np.log2(tables[np.arange(ordered.size), ordered] / tables.sum(axis=1)).sum()
    return {
        "none (fixed length)": symbols.size * float(np.log2(levels)),
        "channel, static": float(-np.log2(marginal[np.arange(channels)[:, None, None], symbols]).sum()),
        "channel + above, static (coder 1)": symbol_bits(symbols, probabilities, CODER_ABOVE),
        "channel + above, adaptive": float(above_adaptive),
        "channel + above + left, adaptive (coder 2)": symbol_bits(symbols, probabilities, CODER_ADAPTIVE),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    task = load_compression_task(args.ckpt)
    codec = ImageCodec(task, checkpoint=args.ckpt)
    marginal = probabilities_from_counts(task.symbol_counts.sum(dim=1, keepdim=True).numpy())[:, 0]
    results = {"checkpoint": args.ckpt, "threads": torch.get_num_threads(), "bpp_bound": codec.bpp_bound,
               "coders": {str(k): v for k, v in CODERS.items()}, "photos": {}}
    totals = {"pixels": 0, "symbols": 0, "bytes": {c: 0 for c in CODERS}, "payload_bits": {c: 0 for c in CODERS},
              "model_bits": {}}
    for name in SAMPLE_PHOTOS:
        image = sample_photo(name)
        pixels = image.shape[0] * image.shape[1]
        x, _ = pad_to_multiple({"image": to_tensor(image).unsqueeze(0) * 2 - 1}, DOWNSAMPLING)
        with torch.no_grad():
            w_bar = codec.model.quantizer(codec.model.encode(x["image"]))
            encoder = best_of(args.repeats, lambda x=x: codec.model.encode(x["image"]))
            generator = best_of(args.repeats, lambda w_bar=w_bar: codec.model.decode(w_bar))
        photo = {"pixels": pixels, "encoder_seconds": encoder, "generator_seconds": generator}
        symbols = None
        for coder in CODERS:
            data = codec.compress(image, coder=coder)
            header, words = unpack(data)
            decoded = decode_symbols(words, codec.probabilities, header.latent_shape, coder)
            assert symbols is None or np.array_equal(decoded, symbols), "the coders decoded different symbols"
            symbols = decoded
            encode = best_of(args.repeats, lambda s=symbols, c=coder: encode_symbols(s, codec.probabilities, c))
            decode = best_of(args.repeats, lambda w=words, h=header, c=coder: decode_symbols(
                w, codec.probabilities, h.latent_shape, c))
            bpp = 8 * len(data) / pixels
            photo[f"coder_{coder}"] = {
                "bytes": len(data),
                "bpp": bpp,
                "bpp_over_bound": bpp / codec.bpp_bound,
                "payload_bits_per_symbol": 32 * words.size / symbols.size,
                "encode_megapixels_per_second": pixels / encode / 1e6,
                "decode_megapixels_per_second": pixels / decode / 1e6,
            }
            totals["bytes"][coder] += len(data)
            totals["payload_bits"][coder] += 32 * words.size
        bits = model_bits(symbols, codec.probabilities, marginal)
        photo["symbols"] = int(symbols.size)
        photo["bits_per_symbol"] = {model: value / symbols.size for model, value in bits.items()}
        for model, value in bits.items():
            totals["model_bits"][model] = totals["model_bits"].get(model, 0.0) + value
        totals["pixels"] += pixels
        totals["symbols"] += symbols.size
        results["photos"][name] = photo

    photos = results["photos"].values()
    overall = {}
    for coder in CODERS:
        bpp = 8 * totals["bytes"][coder] / totals["pixels"]
        overall[f"coder_{coder}"] = {
            "bpp": bpp,
            "bpp_over_bound": bpp / codec.bpp_bound,
            "payload_bits_per_symbol": totals["payload_bits"][coder] / totals["symbols"],
            "median_encode_megapixels_per_second": statistics.median(
                p[f"coder_{coder}"]["encode_megapixels_per_second"] for p in photos),
            "median_decode_megapixels_per_second": statistics.median(
                p[f"coder_{coder}"]["decode_megapixels_per_second"] for p in photos),
            "slowest_decode_megapixels_per_second": min(
                p[f"coder_{coder}"]["decode_megapixels_per_second"] for p in photos),
        }
    overall["ideal_bits_per_symbol"] = {model: value / totals["symbols"] for model, value in totals["model_bits"].items()}
    written = overall[f"coder_{CODER_ADAPTIVE}"]
    overall["target"] = {
        "bpp_over_bound_at_most": TARGET_BPP_OVER_BOUND,
        "decode_megapixels_per_second_at_least": TARGET_DECODE_MEGAPIXELS_PER_SECOND,
        "met": written["bpp_over_bound"] <= TARGET_BPP_OVER_BOUND
        and written["slowest_decode_megapixels_per_second"] >= TARGET_DECODE_MEGAPIXELS_PER_SECOND,
    }
    results["overall"] = overall
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
