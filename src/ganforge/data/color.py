"""sRGB <-> CIE Lab in torch, differentiable, batched.

sRGB is IEC 61966-2-1 with the D65 white point; XYZ -> Lab is CIE 1976 with the D65
2-degree reference white (0.95047, 1.0, 1.08883). The conversion matrix and white point
are those of scikit-image's `rgb2lab`, which the tests use as the independent reference.
"""

from __future__ import annotations

import torch

from ganforge.nn.precision import without_autocast

__all__ = ["rgb_to_lab", "lab_to_rgb", "lab_to_network", "network_to_lab", "L_SCALE", "AB_SCALE"]

_RGB_TO_XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_DELTA = 6.0 / 29.0

# pix2pix's colorization scaling: L in [0, 100] -> [-1, 1]; a, b divided by 110.
L_SCALE = 50.0
AB_SCALE = 110.0


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix along the channel axis of (N, 3, H, W), in x's dtype also under
    autocast (bf16-mixed / 16-mixed would run the einsum, a matrix product, in half precision)."""
    with without_autocast(x):
        return torch.einsum("ij,njhw->nihw", matrix.to(x), x).contiguous()


def _check(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} expects a tensor of shape (N, 3, H, W), got {tuple(x.shape)}")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], (N, 3, H, W) -> Lab, (N, 3, H, W): L in [0, 100], a and b in CIE units
    (about -86..98 and -108..94 over the sRGB gamut)."""
    _check(rgb, "rgb_to_lab")
    rgb = rgb.clamp(0.0, 1.0)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(1e-12).pow(2.4), rgb / 12.92)
    xyz = _mix(_RGB_TO_XYZ, linear) / _WHITE_D65.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > _DELTA**3, xyz.clamp_min(1e-12).pow(1.0 / 3.0), xyz / (3 * _DELTA**2) + 4.0 / 29.0)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    return torch.cat([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab, (N, 3, H, W) -> sRGB in [0, 1], (N, 3, H, W); colours outside the sRGB gamut are clipped."""
    _check(lab, "lab_to_rgb")
    fy = (lab[:, 0:1] + 16.0) / 116.0
    f = torch.cat([fy + lab[:, 1:2] / 500.0, fy, fy - lab[:, 2:3] / 200.0], dim=1)
    xyz = torch.where(f > _DELTA, f.pow(3), 3 * _DELTA**2 * (f - 4.0 / 29.0))
    linear = _mix(_XYZ_TO_RGB, xyz * _WHITE_D65.to(lab).view(1, 3, 1, 1)).clamp_min(0.0)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(1e-12).pow(1.0 / 2.4) - 0.055, 12.92 * linear)
    return rgb.clamp(0.0, 1.0).contiguous()


def lab_to_network(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lab -> (L / 50 - 1, ab / 110): the colorization network's input (N, 1, H, W) and target (N, 2, H, W)."""
    return lab[:, :1] / L_SCALE - 1.0, lab[:, 1:] / AB_SCALE


def network_to_lab(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """The inverse of `lab_to_network`: (N, 1, H, W) and (N, 2, H, W) in network units -> Lab."""
    return torch.cat([(lightness + 1.0) * L_SCALE, ab * AB_SCALE], dim=1)
