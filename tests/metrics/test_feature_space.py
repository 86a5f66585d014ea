"""choose_feature_space: Inception when its weights are on disk, else the classifier when
there are labels, else None; and the one-line descriptions."""

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.metrics import (
    FID_WEIGHTS_FILENAME,
    GENERATION_METRICS_SKIPPED_MESSAGE,
    FeatureClassifier,
    InceptionFeatures,
    choose_feature_space,
)


@pytest.fixture
def no_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def labelled(n: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes that a classifier tells apart at once: dark and bright images."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    images = 0.3 * torch.rand(n, 3, 16, 16, generator=generator) + 0.6 * labels[:, None, None, None]
    return images, labels


def test_inception_when_its_weights_are_found(tmp_path, no_hub_cache):
    weights = tmp_path / FID_WEIGHTS_FILENAME
    torch.save(InceptionFeatures().state_dict(), weights)
    calls = []
    space = choose_feature_space(weights, labelled_data=lambda: calls.append(1))
    assert space.name == "inception" and isinstance(space.extractor, InceptionFeatures)
    assert "Inception-v3" in space.description and "\n" not in space.description
    assert calls == []  # the training data was not even loaded


def test_the_classifier_without_inception_weights(tmp_path, no_hub_cache):
    space = choose_feature_space(None, labelled_data=labelled, cache_dir=tmp_path / "cache", epochs=2)
    assert space.name == "classifier" and isinstance(space.extractor, FeatureClassifier)
    assert space.extractor.held_out_accuracy == 1.0 and space.extractor.held_out_count == 12
    assert space.description == (
        "FID in the feature space of a 3-layer CNN classifier trained on the training data "
        "(held-out accuracy 100.0 %), not comparable with Inception FID")
    assert len(list((tmp_path / "cache").glob("feature-classifier-*.pt"))) == 1
    # Asked for explicitly, even with weights on disk; uncached without a cache folder.
    weights = tmp_path / FID_WEIGHTS_FILENAME
    torch.save(InceptionFeatures().state_dict(), weights)
    assert choose_feature_space(weights, labelled(), features="classifier", epochs=1).name == "classifier"


def test_none_without_weights_or_labels(no_hub_cache):
    assert choose_feature_space(None, labelled_data=None) is None
    assert choose_feature_space(None, labelled_data=lambda: None) is None
    assert "skipped" in GENERATION_METRICS_SKIPPED_MESSAGE and "\n" not in GENERATION_METRICS_SKIPPED_MESSAGE


@pytest.mark.parametrize("features, data, says", [
    ("inception", labelled(), "no Inception weights"),
    ("classifier", None, "needs a dataset with class labels"),
    ("vgg", None, "must be one of auto, inception, classifier"),
])
def test_a_feature_space_that_cannot_be_had_is_a_config_error(no_hub_cache, features, data, says):
    with pytest.raises(ConfigError, match=says):
        choose_feature_space(None, data, features=features)
