"""Reading runs: the run folders under a folder, and each run's overrides and val/* metrics
(final, best, untrained) from .hydra/overrides.yaml and metrics.csv."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ganforge.overrides import about_output, split

__all__ = ["Run", "find_runs", "read_run", "metric_direction", "normalize_metric"]

HIGHER_IS_BETTER = ("psnr", "ssim")
LOWER_IS_BETTER = ("l1", "fid", "kid", "bpp", "loss", "mse", "lpips")
# Folders inside a run that never hold a run: not walked, for speed.
SKIPPED_FOLDERS = {".hydra", ".submitit", "checkpoints", "samples", "wandb", "tensorboard"}


def metric_direction(metric: str) -> str | None:
    """'max', 'min', or None when the name says nothing (then there is no best value)."""
    name = metric.rsplit("/", 1)[-1].lower()
    if any(word in name for word in HIGHER_IS_BETTER):
        return "max"
    if any(word in name for word in LOWER_IS_BETTER):
        return "min"
    return None


@dataclass
class Run:
    folder: Path
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)  # name -> final, best, untrained
    epochs: int | None = None   # epochs started (1 after one finished epoch); None without metrics.csv
    step: int | None = None     # the last logged global step
    note: str = ""

    def value(self, metric: str, which: str = "final") -> float | None:
        return self.metrics.get(metric, {}).get(which)

    @property
    def params(self) -> dict[str, str]:
        """key -> value of every override (the last one of a key wins)."""
        return dict(split(o) for o in self.overrides)


# --------------------------------------------------------------------------- finding runs


def _natural_key(path: Path) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)


def _is_train_config(path: Path) -> bool:
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(config, dict) and "model" in config and "trainer" in config


def _is_run(folder: Path) -> bool:
    """A folder train.py wrote: config.yaml + metrics.csv, or Hydra's .hydra/ of a train
    config (a run that crashed before config.yaml or metrics.csv was written)."""
    if (folder / "config.yaml").is_file() and (folder / "metrics.csv").is_file():
        return True
    if (folder / "config.yaml").is_file() and (folder / ".hydra").is_dir():
        return True
    return (folder / ".hydra" / "config.yaml").is_file() and _is_train_config(folder / ".hydra" / "config.yaml")


def find_runs(root: Path) -> list[Path]:
    """Run folders under `root` (or `root` itself), in the order Hydra numbered them."""
    if _is_run(root):
        return [root]
    runs = []
    for folder, subfolders, _ in os.walk(root):
        path = Path(folder)
        if path != root and _is_run(path):
            runs.append(path)
            subfolders.clear()  # runs do not nest
            continue
        subfolders[:] = [s for s in subfolders if s not in SKIPPED_FOLDERS]
    return sorted(runs, key=lambda p: _natural_key(p.relative_to(root)))


# --------------------------------------------------------------------------- reading a run


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _best(values: list[float], direction: str | None) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    if not finite or direction is None:
        return None
    return max(finite) if direction == "max" else min(finite)


def _read_overrides(folder: Path) -> tuple[list[str], str]:
    import yaml

    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return [], ""
    try:
        overrides = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError) as error:
        return [], f"cannot read .hydra/overrides.yaml ({type(error).__name__})"
    if not isinstance(overrides, list):
        return [], "cannot read .hydra/overrides.yaml (not a list)"
    return [str(o) for o in overrides if not about_output(str(o))], ""


def _planned_epochs(folder: Path) -> int | None:
    """trainer.max_epochs when the run is bounded by epochs alone, else None."""
    from omegaconf import OmegaConf

    for path in (folder / "config.yaml", folder / ".hydra" / "config.yaml"):
        if path.is_file():
            try:
                config = OmegaConf.load(path)
                max_epochs = OmegaConf.select(config, "trainer.max_epochs", throw_on_resolution_failure=False)
                max_steps = OmegaConf.select(config, "trainer.max_steps", throw_on_resolution_failure=False)
                fast = OmegaConf.select(config, "trainer.fast_dev_run", throw_on_resolution_failure=False)
            except Exception:  # an unreadable config only costs the note
                return None
            if isinstance(max_epochs, int) and max_epochs > 0 and max_steps in (None, -1) and not fast:
                return max_epochs
            return None
    return None


def read_run(folder: Path) -> Run:
    """A run's overrides and, per val/* metric, its final, best and untrained values."""
    overrides, note = _read_overrides(folder)
    run = Run(folder=folder, overrides=overrides, note=note)
    path = folder / "metrics.csv"
    if not path.is_file():
        run.note = run.note or ("no metrics.csv: crashed before the first log, or trained without "
                                "the CSV logger (logger=default, csv or tensorboard write it)")
        return run
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        run.note = f"cannot read metrics.csv ({type(error).__name__})"
        return run
    trained = []  # rows logged after training started
    series: dict[str, tuple[list[float], list[float]]] = {}  # metric -> (untrained, trained)
    for row in rows:
        step = _number(row.get("step"))
        after = step is None or step > 0
        if after:
            trained.append(row)
        for key, text in row.items():
            if key and key.startswith("val/"):
                value = _number(text)
                if value is not None:
                    series.setdefault(key, ([], []))[1 if after else 0].append(value)
    for key, (untrained, values) in series.items():
        run.metrics[key] = {"final": values[-1] if values else None, "best": _best(values, metric_direction(key)),
                            "untrained": untrained[-1] if untrained else None}
    steps = [s for s in (_number(r.get("step")) for r in rows) if s is not None]
    run.step = int(max(steps)) if steps else None
    epochs = [e for e in (_number(r.get("epoch")) for r in trained) if e is not None]
    run.epochs = int(max(epochs)) + 1 if epochs else 0
    if not any(v["final"] is not None for v in run.metrics.values()):
        run.note = run.note or "no validation after training started (crashed or stopped in the first epoch)"
    else:
        planned = _planned_epochs(folder)
        if planned is not None and run.epochs < planned:
            run.note = run.note or f"ended in epoch {run.epochs} of {planned} (crashed, stopped, or still running)"
    return run


def normalize_metric(metric: str) -> str:
    """'ssim' -> 'val/ssim'; a name with a / stays."""
    return metric if "/" in metric else f"val/{metric}"
