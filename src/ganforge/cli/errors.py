"""Turning a user's mistake into one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from ganforge.errors import UserError, user_message

__all__ = ["EXIT_USER_ERROR", "check_output_root", "find_user_error", "report_user_errors"]

EXIT_USER_ERROR = 2


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
def report_user_errors() -> Iterator[None]:
    """Print a UserError as ``error: <message>`` and exit with status 2.

    Set HYDRA_FULL_ERROR=1 to see the traceback instead.
    """
    try:
        yield
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {user_message(user_error)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def check_output_root(argv: Sequence[str], key: str = "paths.log_dir", default: str = "outputs") -> None:
    """Exit with one line if the folder runs are written under cannot be created.

    Hydra makes the run folder before ganforge's code runs, so a bad `paths.log_dir`
    would otherwise end in Hydra's traceback. Called with the command line, before Hydra.
    """
    values = [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0].lstrip("+") == key and "=" in a]
    folder = Path(values[-1] if values else default).expanduser()
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
