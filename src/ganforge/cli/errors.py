"""Turning a user's mistake into one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from ganforge.errors import UserError, user_message

__all__ = ["EXIT_USER_ERROR", "find_user_error", "report_user_errors"]

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
