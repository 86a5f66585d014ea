"""`python train.py [overrides]`: compose the config with Hydra and train with Lightning."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ganforge.cli import CONFIG_DIR
from ganforge.cli.errors import check_output_root, report_user_errors
from ganforge.cli.precheck import check_command_line
from ganforge.cli.prepare import prepare, prepare_early
from ganforge.cli.quiet import quiet_console, quiet_csv_logger
from ganforge.cli.resume import with_run_overrides
from ganforge.cli.schema import check_config
from ganforge.errors import NonFiniteLossError, UserError, user_message

__all__ = ["main", "train"]

log = logging.getLogger("ganforge")


def _quiet_lightning() -> None:
    """Kept for the commands that import it: see ganforge.cli.quiet."""
    from ganforge.cli.quiet import quiet_console

    quiet_console()


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    if not group:
        return []
    return [hydra.utils.instantiate(node) for node in group.values() if node and "_target_" in node]


def train(cfg: DictConfig) -> dict[str, float]:
    """Train the model `cfg` describes; returns the final metrics (name -> value).

    The run folder (cfg.paths.output_dir) receives config.yaml (the resolved config),
    checkpoints/, samples/, metrics.csv and the loggers' files.
    """
    import torch
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from ganforge.distributed import end_launched_processes, launch_variables

    quiet_console()
    check_config(cfg)  # a multirun's jobs, or train() called from Python, are checked here
    output_dir = Path(cfg.paths.output_dir)

    # Build everything that can reject the user's input before anything is written
    # (train.py's main() has built it already, before Hydra made the run folder).
    prepared = prepare(cfg)
    task, datamodule, ckpt_path = prepared.task, prepared.datamodule, prepared.ckpt_path
    callbacks = _instantiate_all(cfg.get("callbacks"))

    loggers = _instantiate_all(cfg.get("logger"))
    launch_before = launch_variables()
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    _check_strategy(trainer)
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if _is_rank_zero():  # the other processes of a data parallel run share the folder
        OmegaConf.save(OmegaConf.create(resolved), output_dir / "config.yaml")
        print(f"run folder: {output_dir}", flush=True)
    quiet_csv_logger(loggers)
    for logger in trainer.loggers:  # under fast_dev_run, Lightning's DummyLogger: W&B does not start
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
        wandb_folder = _close_loggers()
        end_launched_processes(trainer, launch_before)
    if trainer.is_global_zero:
        _summarize(before, final, output_dir, wandb_folder)
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


def _close_loggers() -> Path | None:
    """Finish the W&B run (in a multirun the next job must start a new one, not append to
    this one); returns the folder of an offline run, for the `wandb sync` line."""
    if "wandb" not in sys.modules:
        return None
    import wandb

    run = wandb.run
    if run is None:
        return None
    offline = bool(getattr(run.settings, "_offline", False) or run.settings.mode in ("offline", "dryrun"))
    folder = Path(run.settings.sync_dir) if offline else None
    wandb.finish()
    return folder


def _summarize(before: dict[str, float], after: dict[str, float], output_dir: Path, wandb_folder: Path | None = None) -> None:
    lines = []
    generation = [f"val/{space}{name}" for space in ("", "clf_")
                  for name in ("fid", "kid_mean", "is_mean", "precision", "recall")]
    for key in ("val/psnr", "val/ssim", "val/ms_ssim", "val/l1", *generation):
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
    if wandb_folder is not None:
        lines.append(f"W&B offline run: upload it with `wandb sync {wandb_folder}`")
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
    return optimized_value(metrics, cfg.get("optimized_metric"))


def optimized_value(metrics: dict, key: str | None) -> float | None:
    """The value of cfg.optimized_metric among a run's final metrics; a generation run
    scored in the offline feature space logs val/fid as val/clf_fid."""
    if not key:
        return None
    if key not in metrics:
        from ganforge.quality import CLASSIFIER_PREFIX, in_space

        key = in_space(key, CLASSIFIER_PREFIX)
    value = metrics.get(key)
    return None if value is None else float(value)


def _check_before_hydra(cfg: DictConfig, overrides: list[str]) -> None:
    """The model and data of the run (the first of a sweep), built and checked before
    Hydra makes the run folder; train() reuses them."""
    if cfg.get("ckpt_path") is not None:
        cfg = with_run_overrides(cfg, overrides)
    prepare_early(cfg)


def main() -> None:
    check_command_line("train", sys.argv[1:], _check_before_hydra)
    check_output_root(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
