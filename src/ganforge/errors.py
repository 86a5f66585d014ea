"""Errors a user can cause and fix: a bad config value, a missing or corrupt file.

They carry one line that names the problem and the fix. The command-line entry points
print that line and exit non-zero instead of showing a traceback. This module imports
nothing, so the layers in `ganforge.nn` and `ganforge.models` can raise these errors
without pulling in Lightning or Hydra.
"""

__all__ = ["UserError", "ConfigError", "DataError", "NonFiniteLossError", "user_message"]


class UserError(ValueError):
    """A mistake in the user's input: the message says what is wrong and how to fix it."""


class ConfigError(UserError):
    """A config value that cannot work (wrong type, out of range, unknown choice)."""


class DataError(UserError):
    """Data that cannot be used: a missing folder, an empty one, an unreadable image."""


class NonFiniteLossError(UserError):
    """A loss became NaN or infinite: training stops (the settings, not the code, need a change)."""


def user_message(error: BaseException) -> str:
    """The one line to show for `error`.

    A DataLoader worker re-raises an exception in the main process with the worker's
    whole traceback in its message; the user's line is the last one of it.
    """
    text = str(error).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text.splitlines()[0] if text else type(error).__name__
