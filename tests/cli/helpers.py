"""Running train.py as a user does, on tiny settings."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests import prewarmed

REPO = Path(__file__).resolve().parents[2]

# A model small enough that one epoch takes a second on a CPU ...
TINY_MODEL = [
    "model.generator.num_downs=5",
    "model.generator.ngf=4",
    "model.discriminator.ndf=4",
    "model.discriminator.n_layers=2",
    "trainer.max_epochs=1",
    "callbacks.sample_grid.every_n_steps=1",
    "callbacks.sample_grid.num_images=2",
    "~callbacks.model_summary",
]
# ... on a few small crops of the bundled photos.
TINY = TINY_MODEL + [
    "data.crop_size=32",
    "data.scale=0.25",
    "data.samples_per_epoch=8",
    "data.batch_size=4",
    "data.max_val_crops_per_image=2",
]


def command_environment(env: dict | None = None, unset: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a command the tests start: this one, W&B offline, output
    unbuffered, `env` on top; without HYDRA_FULL_ERROR (a developer's tracebacks would
    replace the one-line errors the tests read) and the variables in `unset`."""
    environment = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1", **(env or {})}
    for name in ("HYDRA_FULL_ERROR", *unset):
        environment.pop(name, None)
    return environment


def run_train(*overrides: str, log_dir: Path, logger: str = "csv", env: dict | None = None,
              timeout: int = 600, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`python train.py` with `overrides`, writing under `log_dir`; `unset`: environment
    variables to remove (e.g. WANDB_SILENT, which the tests' conftest sets)."""
    flags = [o for o in overrides if o.startswith("-")]  # -m must come before the overrides
    overrides = [o for o in overrides if not o.startswith("-")]
    command = [str(REPO / "train.py"), *flags, f"paths.log_dir={log_dir}", f"logger={logger}", *overrides]
    return prewarmed.run(command, cwd=REPO, env=command_environment(env, unset), timeout=timeout)


def run_folders(log_dir: Path) -> list[Path]:
    """The run folders (those holding a resolved config.yaml) under `log_dir`."""
    return sorted(p.parent for p in log_dir.rglob("config.yaml") if p.parent.name != ".hydra")


def run_script(script: str, *overrides: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python <script> overrides...` (eval.py, predict.py) from the repository root."""
    return prewarmed.run([str(REPO / script), *overrides], cwd=REPO, env=command_environment(env), timeout=timeout)


def run_cli(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m ganforge.cli <args>`, the `ganforge` command, in the current folder."""
    return prewarmed.run(["-m", "ganforge.cli", *args], env=command_environment(env), timeout=timeout)


def stop_part_way(*overrides: str, log_dir: Path, how: signal.Signals) -> tuple[subprocess.CompletedProcess, Path]:
    """Start `python train.py` with `overrides`, send `how` to it once its first last.ckpt
    exists, wait for it to end; returns the finished process and its run folder."""
    command = [str(REPO / "train.py"), f"paths.log_dir={log_dir}", "logger=csv", *overrides]
    process = prewarmed.Command(command, REPO, command_environment())
    deadline = time.monotonic() + 300
    while not list(log_dir.glob("**/checkpoints/last.ckpt")) and process.poll() is None:
        assert time.monotonic() < deadline, "the run wrote no last.ckpt"
        time.sleep(0.01)
    process.send_signal(how)
    out, err = process.communicate(timeout=300)
    [run] = run_folders(log_dir)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), run
