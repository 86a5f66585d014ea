"""Resuming a run: `ckpt_path=` as the user gives it, the checks that a checkpoint can
continue the configured run, and the run's own overrides applied before the user's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ganforge import overrides
from ganforge.errors import UserError

__all__ = ["check_resumable", "resolve_ckpt_path", "with_run_overrides"]

log = logging.getLogger("ganforge")


def resolve_ckpt_path(value: Any, log_dir: Path) -> Path:
    """ckpt_path as the user gave it -> a checkpoint file.

    A file is itself; a run folder means its checkpoints/last.ckpt; `last` means the most
    recently written checkpoints/last.ckpt under `log_dir` (runs and sweeps).
    """
    text = str(value)
    if text == "last":
        found = sorted(log_dir.glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise UserError(f"ckpt_path=last: no run under paths.log_dir={log_dir} has checkpoints/last.ckpt; "
                            "pass a run folder or a .ckpt file")
        return found[-1]
    path = Path(text).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.is_file():
                return candidate
        raise UserError(f"ckpt_path={path} is a folder without checkpoints/last.ckpt: pass a run folder or a .ckpt file")
    if not path.is_file():
        raise UserError(f"ckpt_path={path} does not exist: pass a run folder, a .ckpt file, or last")
    return path


def check_resumable(path: Path, task) -> None:
    """One line, before anything is written, when the checkpoint cannot continue `task`:
    damaged, of the other model family, or of another shape of network."""
    from ganforge.checkpoint import checkpoint_family, read_checkpoint
    from ganforge.tasks.registry import FAMILIES, family_of

    checkpoint = read_checkpoint(path)
    family, wanted = checkpoint_family(checkpoint), family_of(task)
    if family != wanted:
        what = f"a {family} checkpoint" if family else "not a ganforge checkpoint"
        how = FAMILIES[family].trained_by if family in FAMILIES else "the model it was trained with"
        raise UserError(f"ckpt_path={path} is {what}, but this run trains {wanted}: resume it with {how}")
    task.setup("fit")  # builds the moving average of G, if any, whose weights are saved too
    expected = {k: tuple(v.shape) for k, v in task.state_dict().items()}
    saved = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()}
    if expected != saved:
        different = sorted(set(expected) ^ set(saved)) or sorted(k for k in expected if expected[k] != saved[k])
        raise UserError(f"ckpt_path={path} holds another network than this config builds (first difference: "
                        f"{different[0]}): resume with the overrides the run was trained with")


def with_run_overrides(cfg: DictConfig, current: list[str] | None = None) -> DictConfig:
    """When resuming a run that train.py wrote, compose the config again from that run's
    command-line overrides followed by this command's (which win), so that
    `python train.py ckpt_path=<run>` continues the run as it was configured.

    `current`: this command's overrides (default: those of the running Hydra job)."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    ckpt = resolve_ckpt_path(cfg.ckpt_path, Path(cfg.paths.log_dir))
    saved = next((p for p in (ckpt.parent.parent, ckpt.parent) if (p / ".hydra" / "overrides.yaml").is_file()), None)
    if saved is None:
        return cfg
    current = list(HydraConfig.get().overrides.task) if current is None else list(current)
    mine = {overrides.key(o) for o in current} | {"ckpt_path"}
    saved_overrides = overrides.without_hydra(OmegaConf.load(saved / ".hydra" / "overrides.yaml"))
    theirs = [o for o in saved_overrides if overrides.key(o) not in mine]
    if not theirs:
        return cfg
    log.info("resuming %s with its run's overrides %s", ckpt, theirs)
    return compose(config_name="train", overrides=[*theirs, *current], return_hydra_config="hydra" in cfg)
