"""Experiment tracking: Lightning's WandbLogger with the defaults a ganforge run wants.

conf/logger/wandb.yaml builds :class:`WandbLogger`; on top of Lightning's logger it

- uploads the best checkpoint as a model artifact when the run is online and nothing when
  it is offline (``log_model=None``: Lightning refuses ``log_model`` with ``offline=True``);
- in a Hydra multirun (``python train.py -m ...``), puts every run of the sweep in one W&B
  group named after the sweep folder and tags each run with its overrides (``norm=batch``).

Hydra's ``${hydra:...}`` cannot do the last part in the config: it is unset when the config
is composed outside a run (tests, notebooks), and train.py resolves the whole config before
it builds the loggers, so a resolver registered by the logger's module would come too late.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger

from ganforge.errors import ConfigError
from ganforge.overrides import about_output

__all__ = ["WandbLogger", "sweep_group", "override_tags", "MAX_TAG_LENGTH"]

log = logging.getLogger(__name__)

MAX_TAG_LENGTH = 64  # W&B rejects longer tags


def _hydra_job() -> Any | None:
    """Hydra's config of the running job, or None outside a Hydra run."""
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:  # pragma: no cover - Hydra is a dependency
        return None
    return HydraConfig.get() if HydraConfig.initialized() else None


def _in_multirun(hydra: Any) -> bool:
    from hydra.types import RunMode

    return hydra is not None and hydra.mode == RunMode.MULTIRUN


def sweep_group(hydra: Any | None = None) -> str | None:
    """The W&B group of a multirun's jobs: the sweep folder's last two parts (by default
    ``<date>/<time>``, e.g. ``2026-11-26/00-14-20``); None when not in a multirun."""
    hydra = _hydra_job() if hydra is None else hydra
    if not _in_multirun(hydra):
        return None
    try:
        sweep = Path(str(hydra.sweep.dir))
    except Exception:  # an interpolation the job's Hydra config cannot resolve on its own
        sweep = Path(str(hydra.runtime.output_dir)).parent
    return "/".join(sweep.parts[-2:])


def override_tags(overrides: Iterable[str]) -> list[str]:
    """Tags for a job's overrides, as typed (``norm=batch``, ``trainer.max_epochs=3``),
    without those about output folders and loggers (``paths.*``, ``hydra.*``, ``logger*``);
    a tag longer than W&B's 64 characters is cut to 64, ending in ``…``."""
    tags = []
    for override in overrides:
        if about_output(override):  # where the run writes or logs, not what it trains: no tag
            continue
        if override.startswith("~") and override.endswith("=null"):
            override = override[: -len("=null")]  # how a multirun job records `~key`
        tags.append(override if len(override) <= MAX_TAG_LENGTH else override[: MAX_TAG_LENGTH - 1] + "…")
    return tags


class WandbLogger(_LightningWandbLogger):
    """Lightning's WandbLogger, plus:

    - ``log_model=None`` (the default) means ``not offline``: an online run uploads its
      best checkpoint as a ``model`` artifact at the end of training (aliases ``best`` and
      ``latest``); an offline run uploads nothing.
    - Only the checkpoints of ModelCheckpoint callbacks that monitor a metric are
      uploaded when one exists: a ``monitor=None`` "last" callback would otherwise take
      the ``best`` alias (its newest file counts as its best).
    - In a Hydra multirun, ``group=None`` becomes :func:`sweep_group` and the job's
      overrides are added to ``tags`` (:func:`override_tags`); outside one, both are
      passed as given.
    """

    def __init__(
        self,
        *args: Any,
        offline: bool = False,
        log_model: bool | Literal["all"] | None = None,
        group: str | None = None,
        tags: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if log_model is None:
            log_model = not offline
        elif offline and log_model:
            raise ConfigError(
                f"logger.wandb.log_model={str(log_model).lower()} needs logger.wandb.offline=false: an offline "
                "run cannot upload checkpoints (leave log_model=null to upload the best one whenever online)"
            )
        hydra = _hydra_job()
        if _in_multirun(hydra):
            group = group if group is not None else sweep_group(hydra)
            tags = list(dict.fromkeys([*(tags or []), *override_tags(hydra.overrides.task)]))
        if group is not None:
            kwargs["group"] = group
        if tags:
            kwargs["tags"] = list(tags)
        super().__init__(*args, offline=offline, log_model=log_model, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)  # wandb warns that the setting has no effect
        self._saw_monitored_checkpoint = False

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if getattr(checkpoint_callback, "monitor", None) is not None:
            self._saw_monitored_checkpoint = True
        elif self._saw_monitored_checkpoint:
            return
        super().after_save_checkpoint(checkpoint_callback)

    def finalize(self, status: str) -> None:
        callbacks = getattr(self, "_checkpoint_callbacks", None)
        if self._saw_monitored_checkpoint and isinstance(callbacks, dict):
            # A "last" callback registered before the first monitored one saved.
            self._checkpoint_callbacks = {k: c for k, c in callbacks.items() if getattr(c, "monitor", None) is not None}
        super().finalize(status)
