"""`python train.py [overrides]`: compose the config with Hydra and train with Lightning."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ganforge.checks import check_choice
from ganforge.cli import CONFIG_DIR
from ganforge.cli.errors import check_accelerator, check_output_root, check_precision, report_user_errors
from ganforge.cli.resume import check_resumable, resolve_ckpt_path, with_run_overrides
from ganforge.errors import NonFiniteLossError, UserError, user_message

__all__ = ["main", "train"]

log = logging.getLogger("ganforge")


def _quiet_lightning() -> None:
    # On a CPU the in-memory sample data needs no workers; the hint would only confuse.
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*")
    # Data parallel: the validation metrics are torchmetrics, which gather every process's
    # state before computing; the values logged are already those of the whole set.
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")


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
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from ganforge.distributed import end_launched_processes, launch_variables

    _quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)

    # Build everything that can reject the user's input before anything is written.
    check_accelerator(cfg.trainer)
    check_precision(cfg.trainer)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None:
        ckpt_path = str(resolve_ckpt_path(ckpt_path, Path(cfg.paths.log_dir)))
    task = hydra.utils.instantiate(cfg.model, _convert_="all")
    if ckpt_path is not None:
        check_resumable(Path(ckpt_path), task)
    guard = cfg.get("trainer_guard") or {}
    task.on_nonfinite = check_choice("trainer_guard.on_nonfinite", guard.get("on_nonfinite", "stop"), ("stop", "skip"))
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    callbacks = _instantiate_all(cfg.get("callbacks"))

    loggers = _instantiate_all(cfg.get("logger"))
    launch_before = launch_variables()
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    _check_strategy(trainer)
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if _is_rank_zero():  # the other processes of a data parallel run share the folder
        OmegaConf.save(OmegaConf.create(resolved), output_dir / "config.yaml")
    for logger in loggers:
        logger.log_hyperparams(resolved)

    try:
        before = {}
        if cfg.get("validate_before_training", True) and ckpt_path is None:
            # The untrained model's scores: the baseline that training must beat.
            before = {k: float(v) for k, v in trainer.validate(task, datamodule=datamodule, verbose=False)[0].items()}
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
        final = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    except SIGTERMException:
        _report_interrupt(trainer, output_dir)
    except NonFiniteLossError as error:
        last = output_dir / "checkpoints" / "last.ckpt"
        kept = f"; the last good checkpoint is {last}" if last.is_file() else "; no checkpoint was written yet"
        raise NonFiniteLossError(f"{error}{kept}") from None
    finally:
        _close_loggers()
        end_launched_processes(trainer, launch_before)
    if trainer.is_global_zero:
        _summarize(before, final, output_dir)
    return final


def _check_strategy(trainer) -> None:
    """More than one process needs GANDDPStrategy: Lightning's own DDP cannot run the two
    backward passes of a GAN step, and its launcher would restart a multirun."""
    from ganforge.distributed import GANDDPStrategy

    processes = trainer.num_devices * trainer.num_nodes
    if processes > 1 and not isinstance(trainer.strategy, GANDDPStrategy):
        raise UserError(f"trainer.devices={trainer.num_devices} x trainer.num_nodes={trainer.num_nodes} runs "
                        f"{processes} processes with Lightning's {type(trainer.strategy).__name__}, which cannot "
                        "train a GAN's two networks: use trainer=ddp (GPUs) or trainer=ddp_cpu")


def _is_extra_process() -> bool:
    """Whether ganforge's launcher started this process for a data parallel run."""
    from ganforge.distributed import EXTRA_PROCESS_VARIABLE

    return os.environ.get(EXTRA_PROCESS_VARIABLE) == "1"


def _is_rank_zero() -> bool:
    """Whether this is the first process of a run (before the trainer knows: from the
    launch variables that Lightning, torchrun or SLURM set)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _report_interrupt(trainer, output_dir: Path) -> None:
    """After SIGTERM or Ctrl-C: say where the run stopped and how to continue; exit 128 + signal."""
    import signal

    from ganforge.checkpoint import LastCheckpoint

    saver = next((c for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)
    name = (saver.interrupted_by if saver else None) or "SIGTERM"
    where = f"saved {saver.path}" if saver and saver.path.is_file() else "no checkpoint saved (no last_checkpoint callback)"
    message = (f"stopped by {name} at step {trainer.global_step} (epoch {trainer.current_epoch}): {where}; "
               f"continue with: python train.py ckpt_path={output_dir}")
    if trainer.is_global_zero:
        log.info(message)
        print(message, file=sys.stderr, flush=True)
    _close_loggers()
    sys.exit(0 if _is_extra_process() else 128 + (signal.SIGINT if name == "SIGINT" else signal.SIGTERM))


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


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
        if cfg.get("ckpt_path") is not None:
            cfg = with_run_overrides(cfg)
        try:
            metrics = train(cfg)
        except NonFiniteLossError as error:
            if _is_extra_process():
                return None  # the first process reports it
            if not _in_multirun():
                raise
            # A diverged trial is a result, not the end of the search: the sweeper records
            # a None as a failed trial and goes on.
            print(f"error: {user_message(error)} (this run is left out; the sweep goes on)", file=sys.stderr)
            return None
    # The Optuna sweeper reads the return value: the metric chosen by cfg.optimized_metric.
    key = cfg.get("optimized_metric")
    return metrics.get(key) if key else None


def main() -> None:
    check_output_root(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
