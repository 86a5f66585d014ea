"""Turning a user's mistake into one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ganforge.errors import ConfigError, UserError, user_message

__all__ = ["EXIT_USER_ERROR", "check_accelerator", "check_output_root", "check_precision", "check_processes",
           "find_user_error", "report_user_errors"]

EXIT_USER_ERROR = 2
_STARTED = time.time()  # imported before Hydra makes a run folder


def find_user_error(error: BaseException) -> UserError | None:
    """The UserError behind `error`, following Hydra's and Lightning's wrapping."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UserError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


@contextmanager
def report_user_errors(discard_run_folder: bool = False) -> Iterator[None]:
    """Print a UserError as ``error: <message>`` and exit with status 2.

    discard_run_folder: remove the folder Hydra made for this run when it holds nothing but
    what Hydra itself wrote in this process (.hydra/ and the job's log): for commands whose
    only product is written at the end (eval.py), a mistake then leaves no folder behind.
    Set HYDRA_FULL_ERROR=1 to see the traceback instead.
    """
    try:
        yield
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if discard_run_folder:
            _discard_hydra_run_folder()
        print(f"error: {user_message(user_error)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def _discard_hydra_run_folder() -> None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    if any(str(o).startswith(("hydra.run.dir", "hydra/run")) for o in hydra.overrides.hydra):
        return  # a folder the user chose may hold earlier runs: left as it is
    folder = Path(hydra.runtime.output_dir)
    ours = {f"{hydra.job.name}.log"}
    files = [path for path in folder.rglob("*") if path.is_file()]
    only_hydra = all(path.relative_to(folder).parts[0] in {".hydra", *ours} for path in files)
    # Only files written since this process started (the default folder is named by the second).
    if only_hydra and all(path.stat().st_mtime >= _STARTED - 1 for path in files):
        shutil.rmtree(folder, ignore_errors=True)
        try:
            folder.parent.rmdir()  # the day's folder, if this run was its only one
        except OSError:
            pass


def check_output_root(argv: Sequence[str], key: str = "paths.log_dir", default: str = "outputs") -> None:
    """Exit with one line if the folder runs are written under cannot be created.

    Hydra makes the run folder before ganforge's code runs, so a bad `paths.log_dir`
    would otherwise end in Hydra's traceback. Called with the command line, before Hydra.
    """
    from ganforge.overrides import last_value

    folder = Path(last_value(argv, key) or default).expanduser()
    if "," in str(folder) or "$" in str(folder):  # a sweep over folders or an interpolation: Hydra's job
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".ganforge-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        print(f"error: cannot write to {key}={folder} ({error.strerror or error}): choose another folder",
              file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def check_accelerator(trainer: Mapping[str, Any]) -> None:
    """Refuse trainer.accelerator=gpu where torch sees no CUDA GPU, with one line (Lightning's
    own error comes through Hydra as "Error in call to target ...")."""
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise UserError(f"trainer.accelerator={accelerator} but this torch ({torch.__version__}) sees no CUDA GPU: "
                        "use trainer=cpu or trainer=ddp_cpu here, or install a CUDA build of torch on a GPU machine")


def check_precision(trainer: Mapping[str, Any]) -> None:
    """Refuse float16 mixed precision on a CPU with one line naming bf16-mixed.

    Lightning would warn and quietly train in bf16-mixed instead, while the run's
    config.yaml says 16-mixed. `trainer` is the trainer config (precision, accelerator).
    """
    precision = str(trainer.get("precision", "32-true"))
    if precision not in ("16-mixed", "16"):
        return
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator == "auto":
        import torch

        on_cpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    else:
        on_cpu = accelerator == "cpu"
    if on_cpu:
        where = "trainer.accelerator=cpu" if accelerator == "cpu" else "no GPU was found (trainer.accelerator=auto)"
        raise ConfigError(f"trainer.precision={precision} (float16 with loss scaling) needs a GPU, but {where}: "
                          "use trainer.precision=bf16-mixed on a CPU")


def _device_count(devices: Any) -> int | None:
    """How many devices trainer.devices asks for, or None when the Trainer decides (auto, -1)."""
    if isinstance(devices, bool):
        return None
    if isinstance(devices, int):
        return devices if devices > 0 else None
    if isinstance(devices, str):
        parts = [p for p in devices.replace(" ", "").split(",") if p]
        if len(parts) > 1 or devices.strip().endswith(","):
            return len(parts)
        return int(parts[0]) if parts and parts[0].isdigit() else None
    if isinstance(devices, Sequence):
        return len(devices)
    return None


def check_processes(trainer: Mapping[str, Any]) -> None:
    """Refuse more than one process without ganforge's GANDDPStrategy, from the config alone
    (train.py checks the built Trainer again, for devices=auto): Lightning's own DDP cannot
    run a GAN step's two backward passes, and its launcher would restart a multirun."""
    from ganforge.cli.schema import locate

    count, nodes = _device_count(trainer.get("devices", 1)), trainer.get("num_nodes", 1)
    if count is None or not isinstance(nodes, int) or count * nodes <= 1:
        return
    strategy = trainer.get("strategy", "auto")
    if isinstance(strategy, Mapping) and "_target_" in strategy:
        from ganforge.distributed import GANDDPStrategy

        built = locate(str(strategy["_target_"]))
        if isinstance(built, type) and issubclass(built, GANDDPStrategy):
            return
        strategy = built.__name__
    raise UserError(f"trainer.devices={trainer.get('devices')} x trainer.num_nodes={nodes} runs {count * nodes} "
                    f"processes with trainer.strategy={strategy}, which cannot train a GAN's two networks: use "
                    "trainer=ddp (GPUs) or trainer=ddp_cpu")
