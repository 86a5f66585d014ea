"""One generation-metrics validation as train.py runs it, timed
(`python bench/train_step.py --metrics-pass`, and after the dcgan/sngan configs)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from harness import compose_config_from, quiet

# the generation-metrics pass: the CPU demo (conf/model/dcgan.yaml on data=digits), scored in the
# classifier's feature space as train.py does without Inception weights
METRICS_PASS_OVERRIDES = ["model=dcgan", "callbacks.generation_metrics.features=classifier"]


def run_metrics_pass(quick: bool = False) -> dict:
    """The time of GenerationTask validation as train.py runs it: the task and data built by
    ganforge.cli.prepare from `model=dcgan` (the digits: 1797 reference images, 32x32 grey),
    the config's `ganforge.quality.GenerationMetrics` callback (classifier feature space) in
    the config's Trainer, and `trainer.validate`. The classifier's one-time training (what
    the first run on a dataset does, then caches) is timed on its own first, through
    `choose_feature_space` with the callback's cache folder, so that the validations load it
    from the cache as every later run does. The first validation also extracts the reference
    set's features (train.py's validation before training); the second is what every
    validation during training costs (samples, their features, the scores). --quick: a
    256-image reference subset."""
    import hydra

    from ganforge.cli.prepare import prepare
    from ganforge.metrics import choose_feature_space

    quiet()
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-metrics-") as tmp:
        cache = Path(tmp) / "cache"
        extra = [f"callbacks.generation_metrics.cache_dir={cache}"] + (["data.reference_size=256"] if quick else [])
        cfg = compose_config_from(METRICS_PASS_OVERRIDES + extra)
        start = time.perf_counter()
        prepared = prepare(cfg)
        task, datamodule = prepared.task, prepared.datamodule
        build_seconds = time.perf_counter() - start
        callback = hydra.utils.instantiate(cfg.callbacks.generation_metrics)

        start = time.perf_counter()
        images, labels = datamodule.labelled_training_images()  # as the callback reads them, made RGB
        images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        space = choose_feature_space(callback.inception_weights, labelled_data=(images, labels),
                                     cache_dir=callback.cache_dir, features=callback.features)
        classifier_seconds = time.perf_counter() - start
        cached = {f.name: f.stat().st_mtime_ns for f in cache.glob("*.pt")}

        trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[callback], logger=False, enable_checkpointing=False,
                                          enable_progress_bar=False, default_root_dir=tmp)
        passes = []
        for _ in range(2):
            start = time.perf_counter()
            scores = trainer.validate(task, datamodule=datamodule, verbose=False)[0]
            passes.append((time.perf_counter() - start, {k: float(v) for k, v in scores.items()}))
        cache_hit = cached == {f.name: f.stat().st_mtime_ns for f in cache.glob("*.pt")} and len(cached) == 1
        return {
            "overrides": METRICS_PASS_OVERRIDES + (["data.reference_size=256"] if quick else []),
            "reference_images": len(datamodule.val_set), "val_batch_size": datamodule.val_batch_size,
            "accelerator": str(trainer.accelerator.__class__.__name__), "threads": torch.get_num_threads(),
            "build_seconds (prepare: task and data)": build_seconds,
            "classifier_training_seconds (once per dataset, then cached)": classifier_seconds,
            "classifier_training_images": int(images.shape[0]),
            "classifier_held_out_accuracy": space.extractor.held_out_accuracy,
            "first_validation_seconds (classifier from the cache, reference features, samples, scores)": passes[0][0],
            "validation_seconds (a validation during training: samples, their features, scores)": passes[1][0],
            "classifier_loaded_from_cache": cache_hit,
            "scores": passes[1][1], "same_scores_both_passes": passes[0][1] == passes[1][1],
        }

