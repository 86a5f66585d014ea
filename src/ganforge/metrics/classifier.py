"""An offline stand-in for the FID Inception: a small CNN classifier trained on the run's
own labelled training data, whose penultimate features and logits feed FID, KID, IS and
precision/recall when the Inception weights are not on disk (nothing is downloaded).

The idea is the one behind FID itself (features of a network trained to tell the classes
apart, so that distances between them mean something about the images), on a network
that a CPU trains in seconds: on the 1797 bundled 8x8 sklearn digits, upsampled to 32x32,
it reaches about 99 % held-out accuracy in 10 epochs. Its numbers are comparable between
runs that use the same classifier (the same data, seed and settings: the same cache
file), never with Inception FID or with another dataset's classifier.

`load_or_train_classifier` trains it once per dataset and caches the weights in a file
named by a hash of the images, the labels, the architecture version and the training
settings; a damaged cache file is logged and replaced, not fatal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.atomic import save_torch_atomically
from ganforge.checks import check_int, check_number
from ganforge.errors import DataError, user_message

__all__ = [
    "CLASSIFIER_INPUT_SIZE",
    "CLASSIFIER_VERSION",
    "FeatureClassifier",
    "load_or_train_classifier",
    "train_feature_classifier",
]

log = logging.getLogger(__name__)

CLASSIFIER_INPUT_SIZE = 32  # every input is resized to 32x32
CLASSIFIER_VERSION = 1  # of the architecture and the training loop: part of the cache key


class FeatureClassifier(nn.Module):
    """A 3-layer CNN: RGB images in [0, 1] -> (features (N, num_features), logits (N, num_classes)).

    Three 3x3 convolutions of stride 2 with ReLU (32 -> 16 -> 8 -> 4 pixels, ``widths``
    channels), a linear layer to ``num_features`` with ReLU (the features), and a linear
    classifier (the logits). No batch norm or dropout, so train and eval mode compute the
    same thing and the features of an image do not depend on its batch. The features are
    multiplied by ``feature_scale`` (a buffer), which training sets so that they have a
    root mean square of 1 over the training images: FID and KID then have the same scale
    whatever the data (KID's kernel ``(x.y / D + 1)^3`` would otherwise be dominated by the
    arbitrary size of the activations); the logits come from the unscaled features.

    forward: (N, C, H, W) float in [0, 1], any H and W (bilinear resize to 32x32,
    antialiased when shrinking); C = in_channels, or 1 when in_channels is 3 (grey images
    are replicated to RGB). ``held_out_accuracy`` is set by `train_feature_classifier`.
    """

    name = "classifier"

    def __init__(self, in_channels: int = 3, num_classes: int = 10, widths: Sequence[int] = (32, 64, 128),
                 num_features: int = 128) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths must be 3 channel counts, got {widths!r}")
        self.in_channels, self.num_classes, self.num_features = in_channels, num_classes, num_features
        self.widths = tuple(int(w) for w in widths)
        layers, channels = [], in_channels
        for width in self.widths:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU()]
            channels = width
        side = CLASSIFIER_INPUT_SIZE // 8
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * side * side, num_features), nn.ReLU())
        self.head = nn.Linear(num_features, num_classes)
        self.register_buffer("feature_scale", torch.ones(()))
        self.held_out_accuracy: float | None = None
        self.held_out_count = 0

    @property
    def config(self) -> dict:
        """The constructor's arguments, as saved in the cache file."""
        return {"in_channels": self.in_channels, "num_classes": self.num_classes,
                "widths": list(self.widths), "num_features": self.num_features}

    def preprocess(self, images: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1] -> (N, in_channels, 32, 32) in [-1, 1]."""
        if images.dim() != 4 or images.shape[1] not in (self.in_channels, 1):
            raise ValueError(f"expected images shaped (N, {self.in_channels}, H, W), got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"expected float images in [0, 1], got dtype {images.dtype}")
        x = images.to(self.head.weight.dtype)
        if x.shape[1] != self.in_channels:
            x = x.expand(-1, self.in_channels, -1, -1)
        if x.shape[-2:] != (CLASSIFIER_INPUT_SIZE, CLASSIFIER_INPUT_SIZE):
            shrink = min(x.shape[-2:]) > CLASSIFIER_INPUT_SIZE
            x = F.interpolate(x, size=(CLASSIFIER_INPUT_SIZE, CLASSIFIER_INPUT_SIZE), mode="bilinear",
                              align_corners=False, antialias=shrink)
        return 2 * x - 1

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(N, C, H, W) float in [0, 1] -> (features (N, num_features), logits (N, num_classes))."""
        features = self.body(self.preprocess(images))
        return features * self.feature_scale, self.head(features)


def _as_float_images(images: Tensor) -> Tensor:
    """uint8 images -> float in [0, 1]; float images unchanged."""
    return images.float() / 255 if images.dtype == torch.uint8 else images


@contextlib.contextmanager
def _deterministic(device: torch.device):
    """On the CPU, torch's deterministic algorithms, switched back to what they were
    afterwards (on CUDA they would need CUBLAS_WORKSPACE_CONFIG set before start-up)."""
    if device.type != "cpu":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _check_data(images: Tensor, labels: Tensor, num_classes: int | None) -> int:
    if images.dim() != 4 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"the feature classifier needs images (N, C, H, W) and labels (N,), "
                        f"got {tuple(images.shape)} and {tuple(labels.shape)}")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8) or labels.numel() == 0:
        raise DataError(f"the feature classifier needs integer class labels, got {labels.dtype}")
    if labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes):
        raise DataError(f"class labels must lie in [0, {num_classes}), got {int(labels.min())}..{int(labels.max())}")
    classes = int(num_classes if num_classes is not None else labels.max() + 1)
    if len(labels.unique()) < 2:
        raise DataError("the feature classifier needs images of at least 2 classes, got 1")
    return classes


def train_feature_classifier(images: Tensor, labels: Tensor, seed: int = 0, *, num_classes: int | None = None,
                             in_channels: int = 3, epochs: int = 10, batch_size: int = 64, lr: float = 3e-3,
                             held_out: float = 0.1, widths: Sequence[int] = (32, 64, 128), num_features: int = 128,
                             device: str | torch.device = "cpu") -> FeatureClassifier:
    """Train a `FeatureClassifier` on labelled images; it comes back frozen, in eval mode, on the CPU.

    images: (N, C, H, W) float in [0, 1] or uint8, C = in_channels or 1 (grey, replicated
    to RGB, so that the classifier takes the RGB images the metrics give it); labels: (N,)
    integers in [0, num_classes) (num_classes defaults to labels.max() + 1). A seeded random tenth
    (``held_out``) is kept out of training and scores ``held_out_accuracy``. Adam with a
    cosine decay of ``lr`` to 0 over the run, cross-entropy, ``epochs`` passes in shuffled
    batches. On the CPU the result is the
    same bit for bit for the same data, seed and settings (deterministic algorithms, a
    seeded init and shuffle; same torch version and thread count); the global RNG is left
    alone.
    """
    classes = _check_data(images, labels, num_classes)
    if images.shape[1] not in (in_channels, 1):
        raise DataError(f"the feature classifier takes images of {in_channels} or 1 channels, got {images.shape[1]}")
    epochs, batch_size = check_int("epochs", epochs, 1), check_int("batch_size", batch_size, 1)
    held_out = check_number("held_out", held_out, 0, 1, open_maximum=True)
    labels = labels.long()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    n_held = round(held_out * len(labels))
    held, train = order[:n_held], order[n_held:]
    start = time.perf_counter()
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]), _deterministic(device):
        torch.manual_seed(seed)
        model = FeatureClassifier(in_channels, classes, widths, num_features).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        steps = epochs * -(-len(train) // batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
        for _ in range(epochs):
            for batch in train[torch.randperm(len(train), generator=generator)].split(batch_size):
                logits = model(_as_float_images(images[batch]).to(device))[1]
                loss = F.cross_entropy(logits, labels[batch].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    model = model.cpu().eval().requires_grad_(False)
    with torch.no_grad():
        squares = sum(model(_as_float_images(images[b]))[0].square().sum() for b in train.split(256))
        model.feature_scale.fill_(float((squares / (len(train) * num_features)).rsqrt()))
    if n_held:
        with torch.no_grad():
            predictions = torch.cat([model(_as_float_images(images[b]))[1].argmax(1) for b in held.split(256)])
        model.held_out_accuracy = float((predictions == labels[held]).double().mean())
        model.held_out_count = n_held
    accuracy = "no held-out images" if model.held_out_accuracy is None else \
        f"held-out accuracy {100 * model.held_out_accuracy:.1f} % on {n_held} images"
    log.info("feature classifier trained on %d images in %.1f s: %s", len(train), time.perf_counter() - start, accuracy)
    return model


def _cache_key(images: Tensor, labels: Tensor, settings: dict) -> str:
    """sha256 of the architecture version, the settings, and the images' and labels' bytes."""
    digest = hashlib.sha256(f"ganforge feature classifier v{CLASSIFIER_VERSION}".encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for tensor in (images, labels):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy())
    return digest.hexdigest()


def _load_cached(path: Path, key: str) -> FeatureClassifier:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("key") != key:
        raise ValueError("not a feature classifier cache file for this data")
    model = FeatureClassifier(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    model.held_out_accuracy, model.held_out_count = payload["held_out_accuracy"], payload["held_out_count"]
    return model.eval().requires_grad_(False)


def load_or_train_classifier(images: Tensor, labels: Tensor, cache_dir: str | Path, seed: int = 0,
                             **settings) -> FeatureClassifier:
    """The `train_feature_classifier` model for this data, from ``cache_dir`` when it was trained before.

    The file is ``cache_dir/feature-classifier-<hash>.pt``, the hash covering the images,
    the labels, `CLASSIFIER_VERSION`, the seed and the settings (keyword arguments of
    `train_feature_classifier`, ``device`` aside), so any change trains a new one. It is
    read with ``weights_only=True`` and written atomically. A file that cannot be read or
    does not fit is logged, retrained and replaced; a cache folder that cannot be written
    is logged, and the trained model is returned anyway.
    """
    device = settings.pop("device", "cpu")
    key_settings = {"seed": seed, **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}}
    key = _cache_key(images, labels, key_settings)
    path = Path(cache_dir).expanduser() / f"feature-classifier-{key[:16]}.pt"
    if path.is_file():
        try:
            model = _load_cached(path, key)
            log.info("feature classifier loaded from %s", path)
            return model
        except Exception as error:  # truncated, not a torch file, other keys or shapes
            log.warning("feature classifier cache %s is damaged (%s): training it again", path, user_message(error))
    model = train_feature_classifier(images, labels, seed, device=device, **settings)
    payload = {"key": key, "version": CLASSIFIER_VERSION, "config": model.config, "state_dict": model.state_dict(),
               "held_out_accuracy": model.held_out_accuracy, "held_out_count": model.held_out_count}
    try:
        save_torch_atomically(payload, path)
    except OSError as error:
        log.warning("feature classifier not cached: cannot write %s (%s)", path, error.strerror or error)
    return model
