"""Saving a torch file so that no reader, and no crash, ever sees half of it.

torch and the standard library only: checkpoints (ganforge.checkpoint) and the cached
feature classifier of the generation metrics (ganforge.metrics.classifier) both use it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_torch_atomically"]


def save_torch_atomically(payload: Any, path: str | Path) -> None:
    """torch.save into a temporary file in `path`'s folder, flushed to disk, then
    os.replace over `path`: readers see the old file or the new one, never half, and a
    kill during the save leaves the old file whole. The file gets the usual mode
    (0666 less the umask; mkstemp alone would make it 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
