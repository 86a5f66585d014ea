"""`ganforge rd`: rate-distortion of compression checkpoints against JPEG, WebP and AVIF.

    ganforge rd --ckpt a.ckpt --ckpt b.ckpt images/ --out rd/

For every image: each checkpoint's real file size (bits per pixel of the .gfc bytes),
PSNR and MS-SSIM of its reconstruction; the same for JPEG, WebP and AVIF (Pillow) over a
quality sweep, at full size and downscaled by 2, 4 and 8 (ganforge.codec.classical), so
that each classical codec has points at the learned models' rates. Writes rd/rd.csv (one
row per codec, setting and image), rd/rd.json (the rows, the averages per codec and
setting, each codec's front, and every classical codec at each checkpoint's rate, image
by image: ganforge.codec.rate_distortion) and rd/rd.png (bpp on a log axis, PSNR and
MS-SSIM: each codec's front as a line, its other settings as faint points).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

from ganforge.codec.classical import QUALITIES, SCALES, available, round_trip, setting_label
from ganforge.codec.rate_distortion import QUALITY_KEYS, equal_rate, front, summarize
from ganforge.errors import DataError

__all__ = ["main", "measure", "summarize", "plot", "quality_metrics"]


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


def codec_name(checkpoint: Path) -> str:
    """gan:<run folder>/<file stem> for a run's checkpoints/, else gan:<file stem>."""
    if checkpoint.parent.name == "checkpoints":
        return f"gan:{checkpoint.parent.parent.name}/{checkpoint.stem}"
    return f"gan:{checkpoint.stem}"


def measure(images: list[Path], checkpoints: list[Path], qualities: dict[str, tuple[int, ...]] | None = None,
            scales=SCALES, progress=lambda items, label: items) -> list[dict]:
    """One row per image, codec and setting. qualities: classical codec -> its qualities
    (default ganforge.codec.classical.QUALITIES); each is coded at every scale."""
    from ganforge.cli.compress import load_compression_task
    from ganforge.codec.image import ImageCodec
    from ganforge.data.images import load_rgb

    qualities = QUALITIES if qualities is None else qualities
    codecs = [(codec_name(path), ImageCodec(load_compression_task(path), checkpoint=str(path))) for path in checkpoints]
    rows = []
    for path in progress(images, "measuring"):
        image = load_rgb(path)
        pixels = image.shape[0] * image.shape[1]

        def row(codec: str, setting: str, quality, scale: int, size: int, decoded: np.ndarray, path=path,
                image=image, pixels=pixels) -> dict:
            return {"codec": codec, "setting": setting, "quality": quality, "scale": scale, "image": path.name,
                    "bpp": 8 * size / pixels, **quality_metrics(image, decoded)}

        for name, codec in codecs:
            data = codec.compress(image)
            rows.append(row(name, f"C={codec.model.bottleneck},L={codec.centers.numel()}", None, 1, len(data),
                            codec.decompress(data)))
        for codec, codec_qualities in qualities.items():
            for scale in scales:
                for quality in codec_qualities:
                    size, decoded = round_trip(image, codec, quality, scale)
                    rows.append(row(codec, setting_label(quality, scale), quality, scale, size, decoded))
    return rows


def fronts(averages: list[dict]) -> dict[str, dict[str, list[str]]]:
    """codec -> quality key -> the settings on its front of the averages, by rate."""
    result: dict[str, dict[str, list[str]]] = {}
    for codec in sorted({a["codec"] for a in averages}):
        points = [a for a in averages if a["codec"] == codec]
        result[codec] = {key: [p["setting"] for p in front(points, key)] for key in QUALITY_KEYS}
    return result


def plot(averages: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for codec in sorted({a["codec"] for a in averages}, key=lambda c: (not c.startswith("gan:"), c)):
        points = [a for a in averages if a["codec"] == codec]
        colour = next(colours)
        for axis, key in zip(axes, QUALITY_KEYS):
            if codec.startswith("gan:"):
                axis.plot([p["bpp"] for p in points], [p[key] for p in points], marker="*", markersize=14,
                          linestyle="none", color=colour, label=codec, zorder=3)
                continue
            curve = front(points, key)
            axis.plot([p["bpp"] for p in points], [p[key] for p in points], marker=".", linestyle="none",
                      color=colour, alpha=0.25)
            axis.plot([p["bpp"] for p in curve], [p[key] for p in curve], marker="o", markersize=3, color=colour,
                      label=f"{codec} (best setting at each rate)")
    for axis, label in zip(axes, ("PSNR (dB)", "MS-SSIM")):
        axis.set_xscale("log")
        axis.set_xlabel("bits per pixel (real file size)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    figure.suptitle("Rate-distortion, averaged over the images (faint: settings off the front; "
                    "scales 1 to 1/8 for the classical codecs)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _write(out: Path, rows: list[dict], averages: list[dict], comparison: list[dict]) -> None:
    from ganforge.cli.files import write_atomically

    def write_csv(temporary: Path) -> None:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    clean = lambda value: None if isinstance(value, float) and math.isnan(value) else value  # noqa: E731
    document = {"rows": [{k: clean(v) for k, v in r.items()} for r in rows],
                "averages": [{k: clean(v) for k, v in a.items()} for a in averages],
                "fronts": fronts(averages),
                "equal_rate": [{k: clean(v) for k, v in c.items()} for c in comparison]}
    write_atomically(out / "rd.csv", write_csv)
    write_atomically(out / "rd.json", lambda temporary: temporary.write_text(json.dumps(document, indent=2)))
    write_atomically(out / "rd.png", lambda temporary: plot(averages, temporary))


def _integers(text: str, option: str, minimum: int) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise DataError(f"{option} must be comma-separated integers, got {text!r}") from None
    if any(v < minimum for v in values):
        raise DataError(f"{option} takes integers of at least {minimum}, got {text!r}")
    return values


def _report(averages: list[dict], comparison: list[dict]) -> None:
    for codec, keys in fronts(averages).items():
        for average in (a for a in averages if a["codec"] == codec and a["setting"] in keys["psnr"]):
            print(f"{codec:>20} {average['setting']:>16}  {average['bpp']:.4f} bpp  PSNR {average['psnr']:.2f} dB  "
                  f"MS-SSIM {average['ms_ssim']:.4f}")
    for c in comparison:
        if c["psnr_images"]:
            print(f"at {c['rate_of']}'s {c['bpp']:.4f} bpp, {c['codec']}: PSNR {c['psnr']:.2f} dB "
                  f"(the model {c['psnr_learned']:.2f}), MS-SSIM {c['ms_ssim']:.4f} (the model "
                  f"{c['ms_ssim_learned']:.4f}), over {c['psnr_images']} images")
        else:
            print(f"at {c['rate_of']}'s {c['bpp']:.4f} bpp, {c['codec']}: no setting reaches this rate")


def main() -> None:
    parser = argparse.ArgumentParser(prog="ganforge rd", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", action="append", default=[], help="a compression checkpoint (repeatable)")
    parser.add_argument("--out", default="rd", help="folder for rd.csv, rd.json and rd.png (default: rd)")
    for codec, qualities in QUALITIES.items():
        parser.add_argument(f"--{codec}", default=",".join(map(str, qualities)),
                            help=f"{codec.upper()} qualities, comma-separated (empty: leave {codec.upper()} out)")
    parser.add_argument("--scales", default=",".join(map(str, SCALES)),
                        help="downscaling factors for the classical codecs, comma-separated (1: full size)")
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
        qualities = {codec: _integers(getattr(args, codec), f"--{codec}", 0) for codec in QUALITIES}
        if qualities["avif"] and not available("avif"):
            print("note: this Pillow cannot write AVIF (PIL.features.check('avif') is False): AVIF left out")
        qualities = {codec: q for codec, q in qualities.items() if q and available(codec)}
        scales = _integers(args.scales, "--scales", 1) or (1,)
        rows = measure(images, [Path(p) for p in args.ckpt], qualities, scales,
                       progress=lambda items, label: track(items, description=label) if len(items) > 1 else items)
        if not rows:
            raise DataError("nothing to measure: pass --ckpt or leave a classical codec's qualities in")
        averages = summarize(rows)
        comparison = equal_rate(rows)
        _write(Path(args.out), rows, averages, comparison)
        _report(averages, comparison)
        print(f"wrote {Path(args.out) / 'rd.csv'}, rd.json, rd.png")
