"""`ganforge rd`: rate-distortion of compression checkpoints against JPEG and WebP.

    ganforge rd --ckpt a.ckpt --ckpt b.ckpt images/ --out rd/

For every image: each checkpoint's real file size (bits per pixel of the .gfc bytes),
PSNR and MS-SSIM of its reconstruction; the same for JPEG and WebP (Pillow) over a
quality sweep. Writes rd/rd.csv (one row per codec, setting and image), rd/rd.json
(the rows and the averages per codec and setting) and rd/rd.png (bpp on the x axis,
PSNR and MS-SSIM on the y axes, one curve per codec).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np

from ganforge.errors import DataError

__all__ = ["main", "measure", "summarize", "plot"]

JPEG_QUALITIES = (1, 5, 10, 20, 30, 50, 75)
WEBP_QUALITIES = (0, 5, 10, 20, 30, 50, 75)


def quality_metrics(original: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and MS-SSIM of uint8 RGB images, by torchmetrics; MS-SSIM is NaN for
    images with a side of 160 pixels or less (its five scales need more)."""
    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure, peak_signal_noise_ratio

    from ganforge.tasks.gan import MS_SSIM_MIN_SIDE

    a = torch.from_numpy(np.asarray(original, dtype=np.float32) / 255).permute(2, 0, 1).unsqueeze(0)
    b = torch.from_numpy(np.asarray(decoded, dtype=np.float32) / 255).permute(2, 0, 1).unsqueeze(0)
    psnr = float(peak_signal_noise_ratio(b, a, data_range=1.0))
    if min(original.shape[:2]) >= MS_SSIM_MIN_SIDE:
        ms_ssim = float(multiscale_structural_similarity_index_measure(b, a, data_range=1.0))
    else:
        ms_ssim = math.nan
    return {"psnr": psnr, "ms_ssim": ms_ssim}


def _pillow_round_trip(image: np.ndarray, codec: str, quality: int) -> tuple[int, np.ndarray]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=codec, quality=quality)
    size = buffer.tell()
    buffer.seek(0)
    return size, np.asarray(Image.open(buffer).convert("RGB"))


def codec_name(checkpoint: Path) -> str:
    """gan:<run folder>/<file stem> for a run's checkpoints/, else gan:<file stem>."""
    if checkpoint.parent.name == "checkpoints":
        return f"gan:{checkpoint.parent.parent.name}/{checkpoint.stem}"
    return f"gan:{checkpoint.stem}"


def measure(images: list[Path], checkpoints: list[Path], jpeg=JPEG_QUALITIES, webp=WEBP_QUALITIES,
            progress=lambda items, label: items) -> list[dict]:
    from ganforge.cli.compress import load_compression_task
    from ganforge.codec.image import ImageCodec
    from ganforge.data.images import load_rgb

    codecs = [(codec_name(path), ImageCodec(load_compression_task(path), checkpoint=str(path))) for path in checkpoints]
    rows = []
    for path in progress(images, "measuring"):
        image = load_rgb(path)
        pixels = image.shape[0] * image.shape[1]

        def row(codec: str, setting: str, size: int, decoded: np.ndarray, path=path, image=image,
                pixels=pixels) -> dict:
            return {"codec": codec, "setting": setting, "image": path.name, "bpp": 8 * size / pixels,
                    **quality_metrics(image, decoded)}

        for name, codec in codecs:
            data = codec.compress(image)
            rows.append(row(name, f"C={codec.model.bottleneck},L={codec.centers.numel()}", len(data),
                            codec.decompress(data)))
        for format_name, qualities in (("JPEG", jpeg), ("WEBP", webp)):
            for quality in qualities:
                size, decoded = _pillow_round_trip(image, format_name, quality)
                rows.append(row(format_name.lower(), f"q={quality}", size, decoded))
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Averages over images per (codec, setting), ordered by codec then bpp."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["codec"], row["setting"]), []).append(row)
    averages = []
    for (codec, setting), members in groups.items():
        averages.append({
            "codec": codec, "setting": setting, "images": len(members),
            **{key: float(np.nanmean([m[key] for m in members])) if not all(math.isnan(m[key]) for m in members)
               else math.nan for key in ("bpp", "psnr", "ms_ssim")},
        })
    return sorted(averages, key=lambda a: (a["codec"], a["bpp"]))


def plot(averages: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for codec in sorted({a["codec"] for a in averages}):
        points = [a for a in averages if a["codec"] == codec]
        style = dict(marker="*", markersize=12, linestyle="none") if codec.startswith("gan:") else dict(marker="o")
        for axis, key in zip(axes, ("psnr", "ms_ssim")):
            axis.plot([p["bpp"] for p in points], [p[key] for p in points], label=codec, **style)
    for axis, label in zip(axes, ("PSNR (dB)", "MS-SSIM")):
        axis.set_xlabel("bits per pixel (real file size)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle("Rate-distortion, averaged over the images")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _write(out: Path, rows: list[dict], averages: list[dict]) -> None:
    from ganforge.cli.files import write_atomically

    def write_csv(temporary: Path) -> None:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    clean = lambda value: None if isinstance(value, float) and math.isnan(value) else value  # noqa: E731
    document = {"rows": [{k: clean(v) for k, v in r.items()} for r in rows],
                "averages": [{k: clean(v) for k, v in a.items()} for a in averages]}
    write_atomically(out / "rd.csv", write_csv)
    write_atomically(out / "rd.json", lambda temporary: temporary.write_text(json.dumps(document, indent=2)))
    write_atomically(out / "rd.png", lambda temporary: plot(averages, temporary))


def main() -> None:
    parser = argparse.ArgumentParser(prog="ganforge rd", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", action="append", default=[], help="a compression checkpoint (repeatable)")
    parser.add_argument("--out", default="rd", help="folder for rd.csv, rd.json and rd.png (default: rd)")
    parser.add_argument("--jpeg", default=",".join(map(str, JPEG_QUALITIES)), help="JPEG qualities, comma-separated")
    parser.add_argument("--webp", default=",".join(map(str, WEBP_QUALITIES)), help="WebP qualities, comma-separated")
    parser.add_argument("images", help="an image or a folder of images (searched recursively)")
    args = parser.parse_args(sys.argv[1:])

    from rich.progress import track

    from ganforge.cli.errors import report_user_errors
    from ganforge.data.images import find_images

    with report_user_errors():
        source = Path(args.images)
        images = find_images(source) if source.is_dir() else [source]
        if not images:
            raise DataError(f"no images in {source}")
        qualities = {}
        for name in ("jpeg", "webp"):
            try:
                qualities[name] = [int(q) for q in getattr(args, name).split(",") if q.strip()]
            except ValueError:
                raise DataError(f"--{name} must be comma-separated integers, got {getattr(args, name)!r}") from None
        rows = measure(images, [Path(p) for p in args.ckpt], qualities["jpeg"], qualities["webp"],
                       progress=lambda items, label: track(items, description=label) if len(items) > 1 else items)
        averages = summarize(rows)
        _write(Path(args.out), rows, averages)
        for average in averages:
            print(f"{average['codec']:>16} {average['setting']:>10}  {average['bpp']:.4f} bpp  "
                  f"PSNR {average['psnr']:.2f} dB  MS-SSIM {average['ms_ssim']:.4f}")
        print(f"wrote {Path(args.out) / 'rd.csv'}, rd.json, rd.png")
