"""`python eval.py ckpt_path=... [data=...]`: a checkpoint's metrics on any dataset config.

The task's own validation runs unchanged (L1, PSNR, SSIM, MS-SSIM when the images are
large enough; compression adds bits per pixel), so scoring a checkpoint on its training
run's data gives the numbers that run logged. On top of that, this command adds:

* FID, KID, the Inception Score and precision/recall (ganforge.metrics.GenerationMetrics)
  when Inception's FID weights are available locally;
* for compression, val/bpp_coded: the size of every validation image entropy-coded for
  real (ganforge.codec), header included.

The results are printed and written to <run folder>/metrics.json.
"""

from __future__ import annotations

import json
import logging
import sys
import math
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ganforge.cli import CONFIG_DIR
from ganforge.cli.errors import check_output_root, report_user_errors
from ganforge.cli.precheck import check_command_line
from ganforge.errors import ConfigError, UserError

__all__ = ["evaluate", "main", "run_data_config"]

log = logging.getLogger("ganforge")


def run_config_section(ckpt_path: Path, section: str) -> DictConfig | None:
    """A section of the config.yaml that train.py wrote beside the checkpoint's folder
    (<run>/checkpoints/x.ckpt -> <run>/config.yaml), or None."""
    for folder in (ckpt_path.parent, ckpt_path.parent.parent):
        config = folder / "config.yaml"
        if config.is_file():
            found = OmegaConf.load(config).get(section)
            if found is not None:
                return found
    return None


def run_data_config(ckpt_path: Path) -> DictConfig | None:
    """The `data` section of the run that wrote the checkpoint, or None."""
    return run_config_section(ckpt_path, "data")


def _extra_metrics(cfg: DictConfig, task) -> Any:
    """A Lightning callback that scores the validation outputs beyond the task's metrics."""
    import lightning as L
    import numpy as np
    import torch

    from ganforge.metrics import FID_SKIPPED_MESSAGE, GenerationMetrics, load_inception

    fid_cfg = cfg.get("metrics", {}).get("fid", {}) or {}
    inception = load_inception(fid_cfg.get("weights"))
    if inception is None:
        print(FID_SKIPPED_MESSAGE)
        log.info(FID_SKIPPED_MESSAGE)
    codec = None
    if cfg.get("metrics", {}).get("code_images", True) and hasattr(task, "symbol_counts"):
        from ganforge.codec.image import ImageCodec

        codec = ImageCodec(task)

    class ExtraMetrics(L.Callback):
        def __init__(self) -> None:
            self.generative = (
                GenerationMetrics(inception, kid_subset_size=int(fid_cfg.get("kid_subset_size", 100)))
                if inception is not None else None
            )
            self.coded_bits = 0
            self.pixels = 0

        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            fake, real = outputs["fake"], outputs["real"]
            if self.generative is not None:
                self.generative.to(fake.device).update(fake, real)
            if codec is not None:
                # The dataset made these from 8-bit pixels, so rounding recovers them exactly.
                pixels = (real * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for image in pixels:
                    self.coded_bits += 8 * len(codec.compress(np.ascontiguousarray(image)))
                    self.pixels += image.shape[0] * image.shape[1]

        def results(self) -> dict[str, float]:
            out = {}
            if self.generative is not None:
                out.update({f"val/{k}": v for k, v in self.generative.compute().items()})
            if self.pixels:
                out["val/bpp_coded"] = self.coded_bits / self.pixels
            return out

    return ExtraMetrics()


def _generation_metrics(cfg: DictConfig, ckpt_path: Path) -> Any:
    """The generation metrics of a model that generates from noise (ganforge.quality): with
    the settings of the run that wrote the checkpoint (its callbacks.generation_metrics),
    so that eval reproduces what the run logged; metrics.features and metrics.fid.weights
    given here win."""
    from ganforge.quality import GenerationMetrics

    run = run_config_section(ckpt_path, "callbacks") or {}
    node = dict(run.get("generation_metrics") or {})
    keys = ("features", "inception_weights", "cache_dir", "kid_subset_size", "kid_subsets", "precision_recall_k")
    settings = {key: node[key] for key in keys if key in node}
    options = cfg.get("metrics", {}) or {}
    if options.get("features", "auto") != "auto" or "features" not in settings:
        settings["features"] = options.get("features", "auto")
    if (options.get("fid") or {}).get("weights") is not None:
        settings["inception_weights"] = options.fid.weights
    settings.setdefault("cache_dir", options.get("cache_dir") or Path(cfg.paths.log_dir) / "cache")
    return GenerationMetrics(**settings)


def _chosen(group: str) -> str:
    from hydra.core.hydra_config import HydraConfig

    try:
        return str(HydraConfig.get().runtime.choices.get(group))
    except ValueError:  # called outside a Hydra app (tests, notebooks)
        return "given"


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Score the checkpoint `cfg.ckpt_path`; returns metric name -> value."""
    import lightning as L

    from ganforge.checkpoint import load_task
    from ganforge.cli.quiet import quiet_console
    from ganforge.cli.schema import check_config

    quiet_console()
    check_config(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ckpt_path = Path(str(cfg.ckpt_path))
    task = load_task(ckpt_path)
    if not cfg.get("use_ema", True):
        task.generator_ema = None
    data_cfg = cfg.get("data")
    source = f"data={_chosen('data')}"
    if data_cfg is None:
        data_cfg = run_data_config(ckpt_path)
        source = f"the data of the run that wrote {ckpt_path.name}"
        if data_cfg is None:
            raise ConfigError(
                f"no config.yaml beside {ckpt_path} to take the data from: choose it, e.g. data=sample, "
                "data=folder data.root=DIR or data=paired data.root=DIR"
            )
    datamodule = hydra.utils.instantiate(data_cfg, _convert_="all")
    datamodule.setup("validate")
    extra = _generation_metrics(cfg, ckpt_path) if not task.reconstructs else _extra_metrics(cfg, task)

    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg.update(logger=False, enable_checkpointing=False, enable_model_summary=False)
    trainer = hydra.utils.instantiate(trainer_cfg, callbacks=[extra])
    scores = trainer.validate(task, datamodule=datamodule, verbose=False)[0]
    metrics = {k: float(v) for k, v in scores.items()}
    if hasattr(extra, "results"):
        metrics.update(extra.results())

    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {"checkpoint": str(ckpt_path.resolve()), "data": source, "ema": task.generator_ema is not None,
              "metrics": metrics}
    (output_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    width = max(len(k) for k in metrics) if metrics else 0
    lines = [f"{ckpt_path} on {source}" + (" (moving average of G)" if report["ema"] else "")]
    lines += [f"  {k:<{width}}  {v:.6g}" for k, v in sorted(metrics.items()) if not math.isnan(v)]
    lines.append(f"written to {output_dir / 'metrics.json'}")
    print("\n".join(lines))
    log.info("\n".join(lines))
    return metrics


def _check_arguments(cfg: DictConfig, overrides: list[str] | None = None) -> None:
    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise UserError("ckpt_path is missing: python eval.py ckpt_path=<run>/checkpoints/best.ckpt")
    if not Path(str(cfg.ckpt_path)).exists():  # the other problems of the file: load_task
        raise UserError(f"checkpoint not found: {cfg.ckpt_path}")


@hydra.main(config_path=str(CONFIG_DIR), config_name="eval", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    with report_user_errors(discard_run_folder=True):  # a mistake leaves no eval folder
        _check_arguments(cfg)
        evaluate(cfg)


def main() -> None:
    check_command_line("eval", sys.argv[1:], _check_arguments)  # before Hydra makes the output folder
    check_output_root(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
