"""`GenerationMetrics`: a Lightning callback that scores samples as validation.

A generation task's `validation_step` returns ``{"fake", "real"}``: one sample per image of
the fixed reference set, from codes keyed by the image's position (ganforge.tasks.
generation). This callback puts both through a feature extractor and logs, at the end of
each validation, ``val/fid``, ``val/kid_mean``, ``val/kid_std``, ``val/is_mean``,
``val/is_std``, ``val/precision`` and ``val/recall`` (ganforge.metrics.GenerationMetrics).

The feature space (`features`):
* ``inception``: the FID Inception-v3, as the literature reports FID; its weights must be on
  disk (nothing is downloaded);
* ``classifier``: the offline stand-in, a small CNN trained once on the training data's
  labels and cached under `cache_dir` (ganforge.metrics.classifier). Its metrics are logged
  with a ``clf_`` prefix (``val/clf_fid``, ...): they measure the same things in another
  feature space and are not comparable with Inception FIDs;
* ``auto``: inception when its weights are found, else the classifier.

The reference set's features are extracted once and kept between validations. The
checkpoint callbacks that monitor ``val/fid`` follow the feature space chosen (``val/clf_fid``
with the classifier), so the best checkpoint is the best by the FID that is there.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ganforge.checks import check_choice, check_int
from ganforge.errors import ConfigError

__all__ = ["CLASSIFIER_PREFIX", "GenerationMetrics", "in_space"]

log = logging.getLogger("ganforge")

CLASSIFIER_PREFIX = "clf_"


class GenerationMetrics(L.Callback):
    """Generation metrics of each validation's samples (see the module docstring).

    every_n_steps: training batches between evaluations (the config feeds it to
        trainer.val_check_interval; kept here so that the config has one number).
    monitor: the metric the best checkpoint is chosen by, as configured (val/fid).
    """

    def __init__(self, every_n_steps: int = 500, features: str = "auto", inception_weights: str | None = None,
                 cache_dir: str | Path = "outputs/cache", kid_subset_size: int = 1000, kid_subsets: int = 100,
                 precision_recall_k: int = 3, monitor: str = "val/fid") -> None:
        self.every_n_steps = check_int("callbacks.generation_metrics.every_n_steps", every_n_steps, 1)
        self.features = check_choice("callbacks.generation_metrics.features", features,
                                     ("auto", "inception", "classifier"))
        self.inception_weights = inception_weights
        self.cache_dir = Path(cache_dir)
        self.kid_subset_size = check_int("callbacks.generation_metrics.kid_subset_size", kid_subset_size, 2)
        self.kid_subsets = check_int("callbacks.generation_metrics.kid_subsets", kid_subsets, 1)
        self.precision_recall_k = check_int("callbacks.generation_metrics.precision_recall_k", precision_recall_k, 1)
        self.configured_monitor = monitor
        self.metrics = None   # ganforge.metrics.GenerationMetrics, once the feature space is chosen
        self.prefix = ""
        self.description = ""
        self._real_complete = False

    # ---- choosing the feature space ----------------------------------------------------

    def _choose(self, trainer: L.Trainer) -> None:
        from ganforge.metrics import GenerationMetrics as Scores
        from ganforge.metrics import choose_feature_space

        # Data parallel: the first process trains (or reads) the classifier and caches it, the
        # others wait and read that file, so every process scores in the same feature space.
        first = trainer.world_size == 1 or trainer.is_global_zero
        if not first:
            trainer.strategy.barrier("generation-metrics-features")
        with _one_thread():  # the classifier's weights must not depend on the thread count
            space = choose_feature_space(self.inception_weights, labelled_data=_labelled_rgb(trainer.datamodule),
                                         cache_dir=self.cache_dir, features=self.features)
        if first and trainer.world_size > 1:
            trainer.strategy.barrier("generation-metrics-features")
        if space is None:
            raise ConfigError("callbacks.generation_metrics: no feature space for the generation metrics (no Inception "
                              "weights and no labelled training data for the classifier): pass "
                              "callbacks.generation_metrics.inception_weights=FILE or use labelled data")
        self.prefix = CLASSIFIER_PREFIX if space.name == "classifier" else ""
        self.description = space.description
        self.metrics = Scores(space.extractor, kid_subset_size=self.kid_subset_size, kid_subsets=self.kid_subsets,
                              neighbours=self.precision_recall_k)
        log.info("generation metrics: %s", self.description)
        if trainer.is_global_zero:
            print(f"generation metrics: {self.description}", flush=True)
        self._follow_monitor(trainer)

    @property
    def monitor(self) -> str:
        """The metric the best checkpoint is chosen by, in the feature space in use."""
        return in_space(self.configured_monitor, self.prefix)

    def _follow_monitor(self, trainer: L.Trainer) -> None:
        from lightning.pytorch.callbacks import ModelCheckpoint

        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.monitor == self.configured_monitor:
                callback.monitor = self.monitor

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if getattr(pl_module, "reconstructs", True):
            raise ConfigError("callbacks.generation_metrics scores models that generate from noise (model=dcgan, "
                              "sngan); remove it for this model")
        if self.metrics is None:
            self._choose(trainer)
        self.metrics.to(pl_module.device)

    # ---- each validation ----------------------------------------------------------------

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.metrics.reset_fake()

    def on_validation_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if not self._real_complete:
            self.metrics.update_real(outputs["real"])
        self.metrics.update_fake(outputs["fake"])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._real_complete = True  # the reference set is the same in every validation
        scores = self.metrics.compute()
        for name, value in scores.items():
            pl_module.log(f"val/{self.prefix}{name}", torch.tensor(float(value)), sync_dist=False)


def in_space(metric: str, prefix: str) -> str:
    """val/fid -> val/clf_fid for the classifier's feature space."""
    if not prefix or "/" not in metric:
        return metric
    head, name = metric.rsplit("/", 1)
    return metric if name.startswith(prefix) else f"{head}/{prefix}{name}"


def _labelled_rgb(datamodule: Any):
    """A function giving the data's labelled training images as RGB (what the metrics see),
    or None when the data has no labels."""
    images_of = getattr(datamodule, "labelled_training_images", None)
    if images_of is None:
        return None

    def labelled():
        images, labels = images_of()
        return (images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images), labels

    return labelled


@contextlib.contextmanager
def _one_thread():
    """torch on one thread: a CPU run's reductions then add in one order, so the cached
    classifier is the same whatever the machine's core count (and training it took 4-5 s
    on one thread against 30-55 s on two busy ones)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

