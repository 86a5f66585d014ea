"""Aggregating: `--aggregate KEY` groups the runs that differ only in KEY (seed, say) into
one cell, and gives each cell's final and best metric values as mean, standard deviation
and count.

The standard deviation is the sample one (divided by n - 1, numpy's ddof=1), None for a
cell of one value. A run without a value of a metric (crashed, stopped before its first
validation, or NaN) is left out of that metric's statistics and counted as missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ganforge.cli.report.runs import Run

__all__ = ["Stats", "Cell", "stats", "aggregate"]


@dataclass
class Stats:
    mean: float | None
    std: float | None      # sample standard deviation (n - 1); None when n < 2
    n: int                 # runs with a value
    missing: int           # runs of the cell without one

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n, "missing": self.missing}


def stats(values: list[float | None]) -> Stats:
    """Mean, sample standard deviation and count of the finite values; the others missing."""
    present = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(present)
    if not n:
        return Stats(None, None, 0, len(values))
    mean = math.fsum(present) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in present) / (n - 1)) if n > 1 else None
    return Stats(mean, std, n, len(values) - n)


@dataclass
class Cell:
    """The runs that share every varying key but the aggregated one."""

    params: dict[str, str]                      # the other varying keys
    runs: list[Run]
    key: str                                    # the aggregated key
    metrics: dict[str, dict[str, Stats]] = field(default_factory=dict)  # metric -> final/best -> Stats

    @property
    def values(self) -> list[str]:
        """The aggregated key's values, in run order ("" for a run that does not set it)."""
        return [run.params.get(self.key, "") for run in self.runs]

    @property
    def overrides(self) -> dict[str, str]:
        """Every override the cell's runs share, the aggregated key left out."""
        shared = dict(self.runs[0].params)
        for run in self.runs[1:]:
            shared = {k: v for k, v in shared.items() if run.params.get(k) == v}
        shared.pop(self.key, None)
        return shared

    def value(self, metric: str, which: str = "final") -> float | None:
        found = self.metrics.get(metric, {}).get(which)
        return found.mean if found is not None else None

    def stat(self, metric: str, which: str = "final") -> Stats:
        return self.metrics.get(metric, {}).get(which) or Stats(None, None, 0, len(self.runs))


def aggregate(runs: list[Run], varying: list[str], key: str, metrics: list[str]) -> list[Cell]:
    """The cells, in the order their first run appears in `runs`."""
    others = [k for k in varying if k != key]
    cells: dict[tuple[str, ...], Cell] = {}
    for run in runs:
        params = {k: run.params.get(k, "") for k in others}
        cell = cells.setdefault(tuple(params.values()), Cell(params=params, runs=[], key=key))
        cell.runs.append(run)
    for cell in cells.values():
        cell.metrics = {m: {which: stats([r.value(m, which) for r in cell.runs]) for which in ("final", "best")}
                        for m in metrics}
    return list(cells.values())
