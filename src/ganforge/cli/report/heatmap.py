"""Plotting: heatmap.png of the chosen metric's final value over a full 2-D grid of two
swept keys (rows: the first, columns: the second); with `--aggregate`, each cell shows
the mean, the standard deviation and n of its runs."""

from __future__ import annotations

from pathlib import Path

from ganforge.cli.report.table import Report

__all__ = ["plot_heatmap"]


def _cells(report: Report) -> dict[tuple[str, str], tuple[float | None, str]]:
    """(row value, column value) -> (the colour's value, the text written in the cell)."""
    grid = report.grid
    assert grid is not None
    rows, cols = grid["rows"], grid["cols"]
    cells = {}
    if report.cells is None:
        for run in report.runs:
            value = run.value(report.metric)
            cells[(report.params(run)[rows], report.params(run)[cols])] = (value, "" if value is None else f"{value:.4g}")
        return cells
    for cell in report.cells:
        stat = cell.stat(report.metric)
        text = ""
        if stat.mean is not None:
            text = f"{stat.mean:.4g}" + (f"\n± {stat.std:.2g}" if stat.std is not None else "") + f"\nn={stat.n}"
        cells[(cell.params[rows], cell.params[cols])] = (stat.mean, text)
    return cells


def plot_heatmap(report: Report, path: Path) -> None:
    """rows = the first swept key, columns = the second; each cell the final metric (the
    mean ± std and n of its runs with --aggregate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = report.grid
    assert grid is not None
    cells = _cells(report)
    values = np.full((len(grid["row_values"]), len(grid["col_values"])), np.nan)
    texts = [["" for _ in grid["col_values"]] for _ in grid["row_values"]]
    for i, row_value in enumerate(grid["row_values"]):
        for j, col_value in enumerate(grid["col_values"]):
            value, text = cells[(row_value, col_value)]
            values[i, j] = np.nan if value is None else value
            texts[i][j] = text
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low == high:
        low, high = low - 0.5, high + 0.5
    rows, cols = values.shape
    tall = 1.0 if report.cells is not None else 0.7
    figure, axis = plt.subplots(figsize=(max(4.0, 1.3 * cols + 2.5), max(3.0, tall * rows + 1.8)))
    colormap = "viridis_r" if report.direction == "min" else "viridis"  # brighter is better
    image = axis.imshow(np.ma.masked_invalid(values), cmap=colormap, vmin=low, vmax=high, aspect="auto")
    middle = (low + high) / 2
    for i in range(rows):
        for j in range(cols):
            value = values[i, j]
            if np.isfinite(value):
                bright = value > middle if report.direction != "min" else value < middle
                axis.text(j, i, texts[i][j], ha="center", va="center", color="black" if bright else "white",
                          fontsize="small" if report.cells is not None else None)
            else:
                axis.text(j, i, "no value", ha="center", va="center", color="grey", fontsize="small")
    axis.set_xticks(range(cols), [str(v) for v in grid["col_values"]])
    axis.set_yticks(range(rows), [str(v) for v in grid["row_values"]])
    axis.set_xlabel(grid["cols"])
    axis.set_ylabel(grid["rows"])
    what = f"final, mean over {report.aggregate}" if report.cells is not None else "final"
    title = f"{report.metric} ({what}) by {grid['rows']} x {grid['cols']}"
    if len(title) > 50:  # long keys (model.discriminator.norm): two lines, so that the title fits
        title = f"{report.metric} ({what})\nby {grid['rows']} x {grid['cols']}"
    axis.set_title(title, fontsize="medium")
    figure.colorbar(image, ax=axis, label=report.metric)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)
