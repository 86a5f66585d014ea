"""Which network's features the generation metrics use: the FID Inception when its weights
are on disk, else a classifier trained on the run's labelled training data, else none.

`choose_feature_space` returns a `FeatureSpace` (the extractor, its name and a one-line
description for logs and reports) or None, when the caller prints
`GENERATION_METRICS_SKIPPED_MESSAGE` and goes on without the metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from ganforge.checks import check_choice
from ganforge.errors import ConfigError
from ganforge.metrics.classifier import FeatureClassifier, load_or_train_classifier, train_feature_classifier
from ganforge.metrics.inception_weights import FID_WEIGHTS_FILENAME, load_inception

__all__ = [
    "FEATURE_SPACES",
    "GENERATION_METRICS_SKIPPED_MESSAGE",
    "FeatureSpace",
    "choose_feature_space",
    "describe_classifier",
]

FEATURE_SPACES = ("auto", "inception", "classifier")

GENERATION_METRICS_SKIPPED_MESSAGE = (
    "FID/KID/IS/precision/recall skipped: no Inception weights "
    f"(pass metrics.fid.weights=/path/to/{FID_WEIGHTS_FILENAME}) and no class labels to train a feature classifier on"
)

INCEPTION_DESCRIPTION = (
    "FID in the feature space of the FID Inception-v3 (pytorch-fid's weights, 2048-d pool features; "
    "IS on its 1008 logits)"
)

LabelledData = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class FeatureSpace:
    """The chosen extractor: ``name`` is "inception" or "classifier", ``description`` one line."""

    name: str
    extractor: nn.Module
    description: str


def describe_classifier(model: FeatureClassifier) -> str:
    """The one-line description of FID in a `FeatureClassifier`'s feature space."""
    accuracy = ("no held-out accuracy" if model.held_out_accuracy is None
                else f"held-out accuracy {100 * model.held_out_accuracy:.1f} %")
    return (f"FID in the feature space of a 3-layer CNN classifier trained on the training data ({accuracy}), "
            "not comparable with Inception FID")


def choose_feature_space(
    inception_weights: str | Path | None = None,
    labelled_data: LabelledData | Callable[[], LabelledData | None] | None = None,
    cache_dir: str | Path | None = None,
    features: str = "auto",
    **classifier_settings,
) -> FeatureSpace | None:
    """The feature space for `GenerationMetrics`, or None when there is none to be had.

    inception_weights: the FID Inception's weights file; None looks in the torch hub cache
        (`load_inception`; a path that is given but unusable is a UserError naming it).
    labelled_data: the training data as (images (N, C, H, W) in [0, 1] or uint8,
        labels (N,)), or a function returning them (or None when the data has no
        labels), called only when the classifier is needed.
    cache_dir: where the classifier is cached (`load_or_train_classifier`); None trains
        it without caching. classifier_settings: `train_feature_classifier`'s keywords.
    features: "auto" (Inception when its weights are found, else the classifier when
        there are labels, else None), "inception" or "classifier" (a ConfigError when
        that one cannot be had).

    The extractor comes back frozen, in eval mode, on the CPU.
    """
    features = check_choice("features", features, FEATURE_SPACES)
    if features != "classifier":
        inception = load_inception(inception_weights)
        if inception is not None:
            return FeatureSpace("inception", inception, INCEPTION_DESCRIPTION)
        if features == "inception":
            raise ConfigError(f"features=inception but no Inception weights were found: "
                              f"pass metrics.fid.weights=/path/to/{FID_WEIGHTS_FILENAME}, or use features=auto")
    data = labelled_data() if callable(labelled_data) else labelled_data
    if data is None:
        if features == "classifier":
            raise ConfigError("features=classifier needs a dataset with class labels to train the classifier on")
        return None
    images, labels = data
    if cache_dir is None:
        model = train_feature_classifier(images, labels, **classifier_settings)
    else:
        model = load_or_train_classifier(images, labels, cache_dir, **classifier_settings)
    return FeatureSpace("classifier", model, describe_classifier(model))
