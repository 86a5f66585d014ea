"""Command-line entry points. Hydra lives here and in conf/, nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CONFIG_DIR"]


def _config_dir() -> Path:
    """conf/ at the top of the checkout, or $GANFORGE_CONFIG_DIR."""
    override = os.environ.get("GANFORGE_CONFIG_DIR")
    return Path(override).resolve() if override else Path(__file__).resolve().parents[3] / "conf"


CONFIG_DIR = _config_dir()
