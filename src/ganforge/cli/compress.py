"""`ganforge compress` and `ganforge decompress`: images <-> .gfc files.

    ganforge compress --ckpt model.ckpt photo.png photo.gfc
    ganforge compress --ckpt model.ckpt photos/ compressed/
    ganforge decompress photo.gfc out.png            (the checkpoint named in the file)
    ganforge decompress --ckpt model.ckpt compressed/ restored/
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from ganforge.cli.files import progress, write_atomically
from ganforge.errors import DataError, UserError

__all__ = ["main_compress", "main_decompress", "load_compression_task"]


def load_compression_task(path: str | Path):
    """A CompressionTask from a checkpoint, read with weights_only=True (see ganforge.checkpoint)."""
    from ganforge.checkpoint import load_task

    return load_task(path, family="compression")


def _pairs(source: Path, target: Path, pattern: Callable[[Path], bool], suffix: str) -> list[tuple[Path, Path]]:
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and pattern(p))
        if not files:
            raise DataError(f"no input files in {source}")
        return [(f, (target / f.relative_to(source)).with_suffix(suffix)) for f in files]
    if not source.is_file():
        raise DataError(f"input not found: {source}")
    return [(source, target)]


def _report(line: str) -> None:
    print(line, flush=True)


def compress(args: argparse.Namespace) -> None:
    from ganforge.codec.image import ImageCodec
    from ganforge.data.images import IMAGE_EXTENSIONS, load_rgb

    codec = ImageCodec(load_compression_task(args.ckpt), checkpoint=str(Path(args.ckpt).resolve()))
    pairs = _pairs(Path(args.input), Path(args.output), lambda p: p.suffix.lower() in IMAGE_EXTENSIONS, ".gfc")
    total_bits = total_pixels = 0
    for source, target in progress(pairs, "compressing"):
        image = load_rgb(source)
        start = time.perf_counter()
        data = codec.compress(image, seed=args.seed)
        seconds = time.perf_counter() - start
        write_atomically(target, lambda temporary, data=data: temporary.write_bytes(data))
        pixels = image.shape[0] * image.shape[1]
        total_bits, total_pixels = total_bits + 8 * len(data), total_pixels + pixels
        _report(f"{target}: {len(data)} bytes, {8 * len(data) / pixels:.4f} bpp (bound {codec.bpp_bound:.4f}), "
                f"{seconds:.2f} s")
    if len(pairs) > 1:
        _report(f"{len(pairs)} images: {total_bits / total_pixels:.4f} bpp overall (bound {codec.bpp_bound:.4f})")


def decompress(args: argparse.Namespace) -> None:
    from PIL import Image

    from ganforge.codec.format import unpack
    from ganforge.codec.image import ImageCodec

    pairs = _pairs(Path(args.input), Path(args.output), lambda p: p.suffix == ".gfc", ".png")
    codecs: dict[str, ImageCodec] = {}
    for source, target in progress(pairs, "decompressing"):
        data = source.read_bytes()
        checkpoint = args.ckpt
        if checkpoint is None:
            header, _ = unpack(data, str(source))
            if not header.checkpoint or not Path(header.checkpoint).is_file():
                raise UserError(f"{source} names checkpoint {header.checkpoint or '(none)'}, which is not here: "
                                "pass --ckpt")
            checkpoint = header.checkpoint
        if checkpoint not in codecs:
            codecs[checkpoint] = ImageCodec(load_compression_task(checkpoint), checkpoint=checkpoint)
        start = time.perf_counter()
        image = codecs[checkpoint].decompress(data, str(source))
        seconds = time.perf_counter() - start
        write_atomically(target, lambda temporary, image=image: Image.fromarray(image).save(temporary, format="PNG"))
        pixels = image.shape[0] * image.shape[1]
        _report(f"{target}: {image.shape[1]}x{image.shape[0]}, {8 * len(data) / pixels:.4f} bpp "
                f"(bound {codecs[checkpoint].bpp_bound:.4f}), {seconds:.2f} s")


def _run(function: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser) -> None:
    args = parser.parse_args(sys.argv[1:])
    from ganforge.cli.errors import report_user_errors

    with report_user_errors():
        function(args)


def main_compress() -> None:
    parser = argparse.ArgumentParser(prog="ganforge compress", description="Compress images to .gfc files.")
    parser.add_argument("--ckpt", required=True, help="a checkpoint trained with model=compression")
    parser.add_argument("--seed", type=int, default=0, help="seed of the decoder's noise map, stored in the file")
    parser.add_argument("input", help="an image, or a folder of images (searched recursively)")
    parser.add_argument("output", help="the .gfc file, or a folder for them")
    _run(compress, parser)


def main_decompress() -> None:
    parser = argparse.ArgumentParser(prog="ganforge decompress", description="Decompress .gfc files to PNG.")
    parser.add_argument("--ckpt", help="the checkpoint (default: the one named in the file)")
    parser.add_argument("input", help="a .gfc file, or a folder of them")
    parser.add_argument("output", help="the PNG file, or a folder for them")
    _run(decompress, parser)
