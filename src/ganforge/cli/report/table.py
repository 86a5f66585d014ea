"""Building the table: the runs sorted by a metric, the overrides that vary between them
and those they share, the cells of `--aggregate KEY`, and the 2-D grid a heatmap shows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganforge.cli.report.aggregate import Cell, aggregate
from ganforge.cli.report.runs import Run, find_runs, metric_direction, normalize_metric, read_run
from ganforge.errors import UserError
from ganforge.overrides import split

__all__ = ["Report", "build_report", "full_grid"]


@dataclass
class Report:
    root: Path
    metric: str
    direction: str | None
    runs: list[Run]                      # sorted by the metric
    metrics: list[str]                   # the chosen one first
    varying: list[str]                   # override keys whose value differs between runs
    common: list[str]                    # overrides every run shares
    grid: dict[str, Any] | None = None   # rows, cols, row_values, col_values, when a full 2-D grid
    aggregate: str | None = None         # the --aggregate key
    cells: list[Cell] | None = None      # with --aggregate: sorted by the metric's mean final value
    comparison: Any = None               # with --reference: a reference.Comparison

    def params(self, run: Run) -> dict[str, str]:
        values = run.params
        return {key: values.get(key, "") for key in self.varying}

    @property
    def cell_keys(self) -> list[str]:
        """The varying keys a cell is told apart by (all but the aggregated one)."""
        return [k for k in self.varying if k != self.aggregate]

    def name(self, run: Run) -> str:
        relative = run.folder.relative_to(self.root) if run.folder != self.root else Path(run.folder.name)
        return str(relative)


def _varying_keys(runs: list[Run]) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    for run in runs:
        for override in run.overrides:
            key = split(override)[0]
            if key not in keys:
                keys.append(key)
    per_run = [run.params for run in runs]
    varying = [k for k in keys if len({values.get(k) for values in per_run}) > 1]
    common = [o for o in runs[0].overrides if split(o)[0] not in varying and all(o in r.overrides for r in runs)]
    return varying, common


def full_grid(entries: list[dict[str, str]], keys: list[str]) -> dict[str, Any] | None:
    """The two keys and their values in sweep order, when every pair of values is exactly
    one entry (a run, or a cell of runs); None otherwise."""
    if len(keys) != 2:
        return None
    first, second = keys
    pairs = []
    for values in entries:
        if values.get(first) in (None, "") or values.get(second) in (None, ""):
            return None
        pairs.append((values[first], values[second]))
    row_values = list(dict.fromkeys(p[0] for p in pairs))
    col_values = list(dict.fromkeys(p[1] for p in pairs))
    if len(set(pairs)) != len(pairs) or len(pairs) != len(row_values) * len(col_values):
        return None
    return {"rows": first, "cols": second, "row_values": row_values, "col_values": col_values}


def _order(direction: str | None, value: float | None) -> tuple:
    if value is None or math.isnan(value):
        return (1, 0.0)
    return (0, value if direction == "min" else -value)


def build_report(root: Path, metric: str = "val/psnr", aggregate_key: str | None = None) -> Report:
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"{root} does not exist: pass a sweep folder (outputs/multirun/<date>/<time>), "
                        "a run folder, or a folder holding sweeps")
    if not root.is_dir():
        raise UserError(f"{root} is not a folder: pass a sweep folder, a run folder, or a folder holding sweeps")
    folders = find_runs(root)
    if not folders:
        raise UserError(f"no runs in {root}: a run folder holds config.yaml and metrics.csv "
                        "(written by train.py with logger=default, csv or tensorboard)")
    runs = [read_run(folder) for folder in folders]  # in sweep order
    present = sorted({name for run in runs for name in run.metrics})
    metric = normalize_metric(metric)
    if present and metric not in present:
        raise UserError(f"--metric {metric} is not in any run's metrics.csv; choose one of: {', '.join(present)}")
    metrics = [metric, *[m for m in present if m != metric]] if metric in present else present
    direction = metric_direction(metric)
    varying, common = _varying_keys(runs)
    report = Report(root=root, metric=metric, direction=direction,
                    runs=sorted(runs, key=lambda run: _order(direction, run.value(metric))), metrics=metrics,
                    varying=varying, common=common)
    if aggregate_key is None:
        report.grid = full_grid([run.params for run in runs], varying)
        return report
    key = split(aggregate_key)[0]
    if key not in varying:
        swept = ", ".join(varying) or "none"
        raise UserError(f"--aggregate {key}: the runs do not differ in {key}; the keys they differ in: {swept}")
    cells = aggregate(runs, varying, key, metrics)
    report.aggregate = key
    report.cells = sorted(cells, key=lambda cell: _order(direction, cell.value(metric)))
    report.grid = full_grid([cell.params for cell in cells], report.cell_keys)
    return report
