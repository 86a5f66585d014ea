"""Sample-quality metrics for generated images: FID (Heusel et al. 2017), KID (Binkowski
et al. 2018), the Inception Score (Salimans et al. 2016) and precision/recall
(Kynkaanniemi et al. 2019), in the feature space of the FID Inception-v3 (Szegedy et al.
2016) or of a small classifier trained on the run's labelled data.

No Lightning or Hydra here, and no torchvision or torch-fidelity: the network is
`InceptionFeatures`, the container `GenerationMetrics` (torchmetrics states), the
arithmetic `ganforge.metrics.scores`. The Inception weights are not shipped;
`load_inception` reads them from a path or the torch hub cache, and returns None when
there are none. `choose_feature_space` then falls back to `FeatureClassifier`, trained
on the run's labelled data and cached, and returns None without labels either (callers
then log `GENERATION_METRICS_SKIPPED_MESSAGE`).
"""

from ganforge.metrics.classifier import FeatureClassifier, load_or_train_classifier, train_feature_classifier
from ganforge.metrics.feature_space import (
    GENERATION_METRICS_SKIPPED_MESSAGE,
    FeatureSpace,
    choose_feature_space,
)
from ganforge.metrics.generation import GENERATION_METRIC_KEYS, GenerationMetrics
from ganforge.metrics.inception import FID_INPUT_SIZE, FID_NUM_CLASSES, FID_NUM_FEATURES, InceptionFeatures
from ganforge.metrics.inception_weights import (
    FID_SKIPPED_MESSAGE,
    FID_WEIGHTS_FILENAME,
    FID_WEIGHTS_URL,
    default_weights_paths,
    load_inception,
)

__all__ = [
    "FID_INPUT_SIZE",
    "FID_NUM_CLASSES",
    "FID_NUM_FEATURES",
    "FID_SKIPPED_MESSAGE",
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_URL",
    "GENERATION_METRICS_SKIPPED_MESSAGE",
    "GENERATION_METRIC_KEYS",
    "FeatureClassifier",
    "FeatureSpace",
    "GenerationMetrics",
    "InceptionFeatures",
    "choose_feature_space",
    "default_weights_paths",
    "load_inception",
    "load_or_train_classifier",
    "train_feature_classifier",
]
