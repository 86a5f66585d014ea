"""`python train.py [overrides]`: compose the config with Hydra and train with Lightning."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ganforge.cli import CONFIG_DIR
from ganforge.cli.errors import report_user_errors
from ganforge.errors import UserError

__all__ = ["train", "main"]

log = logging.getLogger("ganforge")


def _quiet_lightning() -> None:
    # On a CPU the in-memory sample data needs no workers; the hint would only confuse.
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*")


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    if not group:
        return []
    return [hydra.utils.instantiate(node) for node in group.values() if node and "_target_" in node]


def train(cfg: DictConfig) -> dict[str, float]:
    """Train the model `cfg` describes; returns the final metrics (name -> value).

    The run folder (cfg.paths.output_dir) receives config.yaml (the resolved config),
    checkpoints/, samples/, metrics.csv and the loggers' files.
    """
    import lightning as L
    import torch

    _quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)

    # Build everything that can reject the user's input before anything is written.
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not Path(str(ckpt_path)).is_file():
        raise UserError(f"ckpt_path={ckpt_path} is not a file: pass the path of a .ckpt to resume from")
    task = hydra.utils.instantiate(cfg.model, _convert_="all")
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    callbacks = _instantiate_all(cfg.get("callbacks"))

    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    OmegaConf.save(OmegaConf.create(resolved), output_dir / "config.yaml")
    loggers = _instantiate_all(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(resolved)

    try:
        before = {}
        if cfg.get("validate_before_training", True) and ckpt_path is None:
            # The untrained model's scores: the baseline that training must beat.
            before = {k: float(v) for k, v in trainer.validate(task, datamodule=datamodule, verbose=False)[0].items()}
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
        final = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    finally:
        _close_loggers()
    _summarize(before, final, output_dir)
    return final


def _close_loggers() -> None:
    # In a multirun the next job must start a new W&B run, not append to this one.
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def _summarize(before: dict[str, float], after: dict[str, float], output_dir: Path) -> None:
    lines = []
    for key in ("val/psnr", "val/ssim", "val/ms_ssim", "val/l1"):
        if key in after:
            start = f"{before[key]:.4g} (untrained) -> " if key in before else ""
            lines.append(f"{key}: {start}{after[key]:.4g}")
    if "val/bpp_bound" in after:
        lines.append(
            f"bits per pixel: bound {after['val/bpp_bound']:.4f} (C * log2(L) / 256), "
            f"symbol entropy {after.get('val/bpp_entropy', float('nan')):.4f}"
        )
    if "val/psnr_gray" in after:
        lines.append(f"val/psnr_gray (grey picture, for reference): {after['val/psnr_gray']:.4g}")
    lines.append(f"run folder: {output_dir}")
    log.info("\n".join(lines))
    print("\n".join(lines))


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float | None:
    with report_user_errors():
        metrics = train(cfg)
    # The Optuna sweeper reads the return value: the metric chosen by cfg.optimized_metric.
    key = cfg.get("optimized_metric")
    return metrics.get(key) if key else None


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
