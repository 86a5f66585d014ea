"""The FID variant of Inception-v3 as a feature extractor: images -> 2048-d pool features
and 1008 class logits.

Inception-v3 is Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer
Vision" (CVPR). FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) are defined on the
2048-d output of its last average pool, the Inception Score (Salimans et al. 2016) on its
class logits, computed with one particular network: the
TensorFlow graph ``inception-2015-12-05`` that the original TTUR FID code used. Its
PyTorch port is the weights file ``pt_inception-2015-12-05-6726825d.pth`` of pytorch-fid
(mseitzer/pytorch-fid, ``fid_inception_v3``); torch-fidelity converts the same graph into
``weights-inception-2015-12-05-6726825d.pth`` with the same key names.

`InceptionFeatures` is written here so that neither torchvision nor torch-fidelity is
needed. Its ``state_dict()`` has exactly the keys and shapes of those files (the names of
torchvision's ``Inception3`` with ``aux_logits=False`` and 1008 classes), and it differs
from torchvision's Inception where the TensorFlow graph does:

- the average pools in the A, C and first E blocks leave the zero padding out of the
  average (``count_include_pad=False``), as TensorFlow's pooling does;
- the last E block (``Mixed_7c``) pools its fourth branch with a *max* pool, a quirk of
  that graph that every FID implementation keeps;
- batch norm uses eps=1e-3.

Preprocessing is pytorch-fid's: a bilinear resize to 299x299 with
``F.interpolate(..., align_corners=False, antialias=False)`` (skipped when the input is
already 299x299), then ``2 * x - 1`` from [0, 1] to [-1, 1]. With the standard weights,
features therefore match pytorch-fid's up to float rounding. They match torch-fidelity
(and torchmetrics' built-in FID, which runs torch-fidelity's network) only up to resize
and quantization differences: torch-fidelity takes uint8 images, maps them with
``(x - 128) / 128`` and resizes with its own TensorFlow-1.x-compatible bilinear
interpolation (no half-pixel offset). pytorch-fid itself differs from the TensorFlow
original for the same kind of reason (its README reports 0.08 FID points on LSUN). The
differences are small but not zero, so compare FID numbers only between runs of the same
implementation, with the same number of images.

The logits are torch-fidelity's ``logits_unbiased`` (what torchmetrics' InceptionScore
uses): the 1008-way ``fc`` applied to the pool features without its bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FID_INPUT_SIZE", "FID_NUM_FEATURES", "FID_NUM_CLASSES", "InceptionFeatures"]

FID_INPUT_SIZE = 299  # the resolution the network was trained at and FID is defined at
FID_NUM_FEATURES = 2048  # channels of the last pool: the features FID and KID compare
FID_NUM_CLASSES = 1008  # the TF graph's classifier has 1008 outputs (1000 used), kept for the keys


class BasicConv2d(nn.Module):
    """Conv (no bias) -> batch norm (eps 1e-3, the TF graph's) -> ReLU.

    Submodule names ``conv`` and ``bn`` are part of the weights file's keys.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: Tensor) -> Tensor:
    """3x3 stride-1 average that ignores the padding, like TensorFlow's (shape kept)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | pool->1x1.

    (N, in_channels, 35, 35) -> (N, 224 + pool_features, 35, 35).
    """

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_tf_avg_pool(x)),
        ], dim=1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction (Mixed_6a): stride-2 3x3 | 1x1->3x3->stride-2 3x3 | max pool.

    (N, in_channels, 35, 35) -> (N, 480 + in_channels, 17, 17).
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class InceptionC(nn.Module):
    """17x17 block with factorized 7x7 convolutions (Mixed_6b..6e).

    (N, in_channels, 17, 17) -> (N, 768, 17, 17); ``channels_7x7`` is the inner width.
    """

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        row, col = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(_tf_avg_pool(x)),
        ], dim=1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction (Mixed_7a).

    (N, in_channels, 17, 17) -> (N, 512 + in_channels, 8, 8).
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        tower = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            tower = layer(tower)
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            tower,
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3/3x1 heads (Mixed_7b, Mixed_7c).

    (N, in_channels, 8, 8) -> (N, 2048, 8, 8). ``max_pool`` selects the pool of the fourth
    branch: False (average, padding excluded) for Mixed_7b, True for Mixed_7c, as in the
    TF graph the FID weights come from.
    """

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(single), self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(pooled),
        ], dim=1)


class InceptionFeatures(nn.Module):
    """FID Inception-v3: RGB images in [0, 1] -> 2048-d pool features and 1008 logits.

    forward: (N, 3, H, W) float in [0, 1], any H and W -> (features (N, 2048), logits
    (N, 1008)), both float32 (the input is resized to 299x299 first; see the module
    docstring for how). The logits are ``features @ fc.weight.T``, without the bias.

    A freshly built module has random weights: load the FID weights with
    ``ganforge.metrics.load_inception(path)`` (or ``load_state_dict``). The module stays in
    eval mode whatever ``train()`` is asked, because batch norm must use the stored
    statistics, not the batch's, for features to be comparable across batches and runs.

    chunk_size: images pushed through the network at once; a larger batch is split so that
    memory stays bounded (a 299x299 image needs about 20 MB of activations).
    """

    name = "inception"
    num_features = FID_NUM_FEATURES  # D of the features
    num_classes = FID_NUM_CLASSES  # K of the logits

    def __init__(self, chunk_size: int = 32) -> None:
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.chunk_size = chunk_size
        # 299 -> 149 -> 147 -> 147 -> (max pool) 73 -> 73 -> 71 -> (max pool) 35
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        # 35x35: 192 -> 256 -> 288 -> 288 channels
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        # -> 17x17x768
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        # -> 8x8x1280 -> 8x8x2048
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        # The classifier: its weight gives the Inception Score's logits (its bias is part of
        # the weights file only, so a strict load works and the module saves back the same).
        self.fc = nn.Linear(FID_NUM_FEATURES, FID_NUM_CLASSES)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> InceptionFeatures:
        """Stays in eval mode (see the class docstring); returns self like nn.Module.train."""
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, 299, 299) in [-1, 1], pytorch-fid's way."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected RGB images shaped (N, 3, H, W), got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"expected float images in [0, 1], got dtype {images.dtype}")
        x = images.to(self.fc.weight.dtype)
        if x.shape[-2:] != (FID_INPUT_SIZE, FID_INPUT_SIZE):
            x = F.interpolate(x, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear",
                              align_corners=False, antialias=False)
        return 2 * x - 1

    def pool_features(self, x: Tensor) -> Tensor:
        """(N, 3, 299, 299) preprocessed -> (N, 2048): the network up to its last pool."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))  # global average pool over the 8x8 map

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3, H, W) float in [0, 1] -> (features (N, 2048), logits (N, 1008)), float32."""
        features = []
        for chunk in images.split(self.chunk_size):
            x = self.preprocess(chunk)
            if x.device.type == "cpu":
                # oneDNN's convolutions run faster on NHWC: 15-40% less time per image
                # measured on a 2-core CPU; the features agree to float round-off.
                x = x.contiguous(memory_format=torch.channels_last)
            features.append(self.pool_features(x))
        pooled = torch.cat(features) if features else images.new_zeros(0, FID_NUM_FEATURES, dtype=self.fc.weight.dtype)
        return pooled.float(), F.linear(pooled, self.fc.weight).float()
