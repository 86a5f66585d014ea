"""Entropy-coding speed and real rate of a compression checkpoint on the bundled photos.

    python bench/codec.py --ckpt outputs/runs/<date>/<time>/checkpoints/last.ckpt

For each photo: the network's time (encoder; generator), the entropy coder's speed in
megapixels per second (encode and decode of the symbols alone, network excluded), and
the real bits per pixel of the whole .gfc file against the bound C * log2(L) / 256.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from ganforge.cli.compress import load_compression_task
from ganforge.codec import decode_symbols, encode_symbols, unpack
from ganforge.codec.image import ImageCodec
from ganforge.data.datasets import to_tensor
from ganforge.data.images import SAMPLE_PHOTOS, sample_photo
from ganforge.models.compression import DOWNSAMPLING
from ganforge.tasks.gan import pad_to_multiple


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    codec = ImageCodec(load_compression_task(args.ckpt), checkpoint=args.ckpt)
    results = {"checkpoint": args.ckpt, "threads": torch.get_num_threads(), "bpp_bound": codec.bpp_bound, "photos": {}}
    for name in SAMPLE_PHOTOS:
        image = sample_photo(name)
        pixels = image.shape[0] * image.shape[1]
        data = codec.compress(image)
        header, words = unpack(data)
        symbols = decode_symbols(words, codec.probabilities, header.latent_shape)
        x, _ = pad_to_multiple({"image": to_tensor(image).unsqueeze(0) * 2 - 1}, DOWNSAMPLING)
        with torch.no_grad():
            w_bar = codec.model.quantizer(codec.model.encode(x["image"]))
            encoder = best_of(args.repeats, lambda x=x: codec.model.encode(x["image"]))
            generator = best_of(args.repeats, lambda w_bar=w_bar: codec.model.decode(w_bar))
        encode = best_of(args.repeats, lambda symbols=symbols: encode_symbols(symbols, codec.probabilities))
        decode = best_of(args.repeats, lambda words=words, header=header: decode_symbols(
            words, codec.probabilities, header.latent_shape))
        bpp = 8 * len(data) / pixels
        results["photos"][name] = {
            "pixels": pixels,
            "bytes": len(data),
            "bpp": bpp,
            "bpp_over_bound": bpp / codec.bpp_bound,
            "entropy_encode_megapixels_per_second": pixels / encode / 1e6,
            "entropy_decode_megapixels_per_second": pixels / decode / 1e6,
            "encoder_seconds": encoder,
            "generator_seconds": generator,
        }
    photos = results["photos"].values()
    total_bits = sum(8 * p["bytes"] for p in photos)
    total_pixels = sum(p["pixels"] for p in photos)
    results["overall"] = {
        "bpp": total_bits / total_pixels,
        "bpp_over_bound": total_bits / total_pixels / codec.bpp_bound,
        "median_entropy_encode_megapixels_per_second": statistics.median(
            p["entropy_encode_megapixels_per_second"] for p in photos),
        "median_entropy_decode_megapixels_per_second": statistics.median(
            p["entropy_decode_megapixels_per_second"] for p in photos),
    }
    results["overall"]["target_met"] = results["overall"]["bpp_over_bound"] <= 0.85
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
