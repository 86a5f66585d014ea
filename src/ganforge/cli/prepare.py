"""The parts of a training run that can refuse the user's input (the trainer settings, the
checkpoint to resume, the model, the data and whether their sizes fit), built once.

train.py's `main()` builds them before Hydra makes the run folder (`prepare_early`), so a
mistake leaves nothing behind; `train()` then takes what was built for its config
(`prepare`), or builds it itself (a multirun's other jobs, train() called from Python).
Both seed the random number generators the same way first, and a reused build restores
the generators' states as they were after building: a run is the same either way.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ganforge.checks import check_choice
from ganforge.errors import ConfigError

__all__ = ["Prepared", "check_image_sizes", "prepare", "prepare_early"]


@dataclass
class Prepared:
    task: Any
    datamodule: Any
    ckpt_path: str | None
    random_states: tuple[Any, Any, Any]  # torch, numpy, random after building


_EARLY: dict[str, Prepared] = {}


def _fingerprint(cfg: DictConfig) -> str | None:
    """What a build depends on, resolved; None when something is filled in by Hydra later."""
    try:
        parts = {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
                 for key in ("seed", "model", "data", "trainer_guard") if key in cfg}
        parts["ckpt_path"] = cfg.get("ckpt_path")
        parts["trainer"] = OmegaConf.to_container(cfg.trainer, resolve=False)
        parts["log_dir"] = str(cfg.paths.log_dir)
    except Exception:
        return None
    return json.dumps(parts, sort_keys=True, default=str)


def _seed(cfg: DictConfig) -> None:
    import lightning as L

    L.seed_everything(cfg.seed, workers=True, verbose=False)


def _random_states() -> tuple[Any, Any, Any]:
    import numpy as np
    import torch

    return torch.random.get_rng_state(), np.random.get_state(), random.getstate()


def _set_random_states(states: tuple[Any, Any, Any]) -> None:
    import numpy as np
    import torch

    torch.random.set_rng_state(states[0])
    np.random.set_state(states[1])
    random.setstate(states[2])


def prepare_early(cfg: DictConfig) -> None:
    """Build and check what `cfg` trains, before Hydra runs; kept for `prepare`."""
    key = _fingerprint(cfg)
    if key is None:
        return
    _EARLY.clear()
    _seed(cfg)
    _EARLY[key] = _build(cfg)


def prepare(cfg: DictConfig) -> Prepared:
    """The task and data module `cfg` trains, checked; seeds the generators with cfg.seed."""
    _seed(cfg)
    key = _fingerprint(cfg)
    early = _EARLY.pop(key, None) if key is not None else None
    if early is not None:
        _set_random_states(early.random_states)
        _record_from_data(cfg, early.datamodule)
        return early
    return _build(cfg)


def _from_data(cfg: DictConfig, datamodule: Any) -> dict[str, Any]:
    """Model options that `null` leaves to the data: the number of classes (a class
    folder's is known only once the folder is read)."""
    if "num_classes" in cfg.model and cfg.model.num_classes is None:
        return {"num_classes": getattr(datamodule, "num_classes", None)}
    return {}


def _record_from_data(cfg: DictConfig, datamodule: Any) -> None:
    """Write what the data filled in into the config, so that config.yaml, the logged
    hyper-parameters and a resumed run say it."""
    filled = _from_data(cfg, datamodule)
    if filled:
        with open_dict(cfg):
            for name, value in filled.items():
                cfg.model[name] = value


def _build(cfg: DictConfig) -> Prepared:
    import hydra

    from ganforge.cli.errors import check_accelerator, check_precision, check_processes
    from ganforge.cli.quiet import quiet_console
    from ganforge.cli.resume import check_resumable, resolve_ckpt_path

    quiet_console()
    check_accelerator(cfg.trainer)
    check_precision(cfg.trainer)
    check_processes(cfg.trainer)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None:
        ckpt_path = str(resolve_ckpt_path(ckpt_path, Path(cfg.paths.log_dir)))
    datamodule = None
    if "num_classes" in cfg.model and cfg.model.num_classes is None:
        # The model takes its number of classes from the data: build the data first.
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        datamodule.setup("fit")
        _record_from_data(cfg, datamodule)
    task = hydra.utils.instantiate(cfg.model, _convert_="all")
    if ckpt_path is not None:
        check_resumable(Path(ckpt_path), task)
    guard = cfg.get("trainer_guard") or {}
    task.guard.on_nonfinite = check_choice("trainer_guard.on_nonfinite", guard.get("on_nonfinite", "stop"), ("stop", "skip"))
    if datamodule is None:
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        datamodule.setup("fit")
    check_image_sizes(task, datamodule)
    return Prepared(task, datamodule, ckpt_path, _random_states())


def _round_up(side: int, multiple: int) -> int:
    return max(multiple, -(-side // multiple) * multiple)


def check_image_sizes(task: Any, datamodule: Any) -> None:
    """Refuse training crops (data.crop_size) that the task's networks cannot take: sides
    that are not multiples of `task.multiple` (the generator's downsampling: 2**num_downs
    for pix2pix's U-Net, 16 for compression), or smaller than the discriminator's
    `min_side` (compression's multiscale discriminator). Whole validation images are
    padded to the multiple, so only the crops need to fit."""
    channels, wanted = getattr(datamodule, "channels", 3), getattr(task, "image_channels", 3)
    if channels != wanted:
        what = "grey (data.channels=1)" if channels == 1 else f"{channels}-channel"
        fix = "set data.channels=3" if wanted == 3 else f"set data.channels={wanted}"
        raise ConfigError(f"the data's images are {what}, but this model takes {wanted}-channel images: {fix}"
                          + (" (or use a generation model: model=dcgan)" if wanted == 3 and channels == 1 else ""))
    side, wanted_side = getattr(datamodule, "image_size", None), getattr(task, "image_size", None)
    if side is not None and wanted_side is not None and side != wanted_side:
        raise ConfigError(f"data.image_size={side} but the model makes {wanted_side}x{wanted_side} images: "
                          f"set data.image_size={wanted_side} or model.image_size={side}")
    crop = getattr(datamodule, "crop_size", None)
    if crop is None:
        return
    height, width = (crop, crop) if isinstance(crop, int) else (int(crop[0]), int(crop[1]))
    shown = height if height == width else [height, width]
    if wanted_side is not None and (height, width) != (wanted_side, wanted_side):
        raise ConfigError(f"data.crop_size={shown} but the model makes {wanted_side}x{wanted_side} images: set "
                          f"data.crop_size={wanted_side} (or model.image_size={height} if it is square)")
    multiple = int(getattr(task, "multiple", 1) or 1)
    generator = getattr(task, "generator", None)

    def fixed(side_multiple: int, at_least: int = 0) -> Any:
        sides = [_round_up(max(side, at_least), side_multiple) for side in (height, width)]
        return sides[0] if height == width else sides

    if height % multiple or width % multiple:
        levels = getattr(generator, "num_downs", None)
        why = f" (model.generator.num_downs={levels}: 2**{levels})" if levels is not None else ""
        raise ConfigError(f"data.crop_size={shown} does not fit the model: its {type(generator).__name__}{why} needs "
                          f"image sides that are multiples of {multiple}: use data.crop_size={fixed(multiple)}")
    minimum = getattr(getattr(task, "discriminator", None), "min_side", None)
    if minimum is not None and min(height, width) < minimum:
        raise ConfigError(f"data.crop_size={shown} is too small for the model: its "
                          f"{type(task.discriminator).__name__} needs image sides of at least {minimum}: use "
                          f"data.crop_size={fixed(multiple, minimum)}, or lower model.discriminator.scales or "
                          "model.discriminator.n_layers")
