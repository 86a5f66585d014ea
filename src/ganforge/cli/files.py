"""What the commands share for writing files: atomic writes and a progress bar."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

from ganforge.errors import UserError

__all__ = ["progress", "write_atomically"]

T = TypeVar("T")


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder and rename it into place, so a
    failure or a kill never leaves a partial `path` (and an existing `path` stays intact)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}; choose another output") from None
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def progress(items: Sequence[T], label: str) -> Iterable[T]:
    """`items` with a progress bar on the console when there is more than one."""
    if len(items) <= 1:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=label)
