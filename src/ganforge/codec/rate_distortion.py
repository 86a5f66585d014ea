"""Comparing codecs at equal rate, from per-image measurements.

A measurement row: {"codec", "setting", "image", "bpp", "psnr", "ms_ssim", ...}. A codec's
front for a quality key is the subset of its settings that no other setting of the same
codec beats, with a higher value at a lower or equal rate (the Pareto front of the
operational rate-distortion points). At a given rate the codec is credited with its
front interpolated linearly in log(bpp) between the two front points around the rate,
as Bjøntegaard's comparisons do; outside the front's range it has no value (no
extrapolation).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["QUALITY_KEYS", "equal_rate", "front", "interpolate", "summarize"]

QUALITY_KEYS = ("psnr", "ms_ssim")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Averages over images per (codec, setting), ordered by codec then bpp."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["codec"], row["setting"]), []).append(row)
    averages = []
    for (codec, setting), members in groups.items():
        average = {"codec": codec, "setting": setting, "images": len(members)}
        for key in ("bpp", *QUALITY_KEYS):
            values = [m[key] for m in members if _finite(m[key])]
            average[key] = float(np.mean(values)) if values else math.nan
        averages.append(average)
    return sorted(averages, key=lambda a: (a["codec"], a["bpp"]))


def front(points: Sequence[dict], key: str) -> list[dict]:
    """The points (dicts with "bpp" and `key`) that no other point beats at a lower or
    equal rate, in increasing bpp (and so increasing `key`)."""
    usable = sorted((p for p in points if _finite(p["bpp"]) and _finite(p[key])), key=lambda p: (p["bpp"], -p[key]))
    kept: list[dict] = []
    for point in usable:
        if not kept or point[key] > kept[-1][key]:
            kept.append(point)
    return kept


def interpolate(points: Sequence[dict], bpp: float, key: str) -> float | None:
    """`points`' front at `bpp`, linear in log(bpp); None outside the front's range."""
    curve = front(points, key)
    if not curve or not (curve[0]["bpp"] <= bpp <= curve[-1]["bpp"]):
        return None
    for low, high in zip(curve, curve[1:]):
        if low["bpp"] <= bpp <= high["bpp"]:
            t = math.log(bpp / low["bpp"]) / math.log(high["bpp"] / low["bpp"])
            return low[key] + t * (high[key] - low[key])
    return curve[0][key]  # a front of one point, at exactly this rate


def equal_rate(rows: Sequence[dict], learned: str = "gan:") -> list[dict]:
    """Each classical codec at each learned codec's rate, image by image.

    For every learned (codec, setting) (codec names starting with `learned`) and every
    other codec: on each image, the other codec's front at the learned one's bpp on that
    image; averaged over the images where that rate is inside the front, beside the
    learned codec's own average over the same images. One dict per pair.
    """
    by_image: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        by_image.setdefault((row["codec"], row["image"]), []).append(row)
    learned_settings = sorted({(r["codec"], r["setting"]) for r in rows if r["codec"].startswith(learned)})
    others = sorted({r["codec"] for r in rows if not r["codec"].startswith(learned)})
    results = []
    for name, setting in learned_settings:
        mine = [r for r in rows if r["codec"] == name and r["setting"] == setting]
        for other in others:
            result = {"rate_of": name, "setting": setting, "codec": other,
                      "bpp": float(np.mean([r["bpp"] for r in mine]))}
            for key in QUALITY_KEYS:
                pairs = []
                for row in mine:
                    value = interpolate(by_image.get((other, row["image"]), []), row["bpp"], key)
                    if value is not None and _finite(row[key]):
                        pairs.append((value, row[key]))
                result[key] = float(np.mean([p[0] for p in pairs])) if pairs else math.nan
                result[f"{key}_learned"] = float(np.mean([p[1] for p in pairs])) if pairs else math.nan
                result[f"{key}_images"] = len(pairs)
            results.append(result)
    return results
