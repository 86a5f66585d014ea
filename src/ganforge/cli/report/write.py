"""Writing: report.md (also printed), report.csv, report.json, heatmap.png for a full 2-D
grid and, with --reference, reference.csv. With --aggregate the rows are the cells (mean
± sample standard deviation and n of their runs) instead of the runs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from ganforge.cli.report.aggregate import Stats
from ganforge.cli.report.heatmap import plot_heatmap
from ganforge.cli.report.table import Report

__all__ = ["markdown", "document", "write_csv", "write_reference_csv", "write_report"]


def _format(value: float | None) -> str:
    if value is None:
        return ""
    return "nan" if math.isnan(value) else f"{value:.4g}"


def _format_stat(stat: Stats) -> str:
    if stat.mean is None:
        return ""
    return _format(stat.mean) + (f" ± {_format(stat.std)}" if stat.std is not None else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join("---:" if h == "#" or "/" in h else "---" for h in header) + "|"]
    lines += ["| " + " | ".join(_cell(str(c)) for c in row) + " |" for row in rows]
    return lines


def _run_rows(report: Report) -> tuple[list[str], list[list[Any]]]:
    with_notes = any(run.note for run in report.runs)
    header = ["#", *report.varying]
    for metric in report.metrics:
        header += [f"{metric} final", f"{metric} best"]
    header += ["epochs", "run"] + (["note"] if with_notes else [])
    rows = []
    for rank, run in enumerate(report.runs, 1):
        params = report.params(run)
        cells = [str(rank), *[params[k] for k in report.varying]]
        for metric in report.metrics:
            cells += [_format(run.value(metric, "final")), _format(run.value(metric, "best"))]
        cells += ["" if run.epochs is None else str(run.epochs), report.name(run)]
        if with_notes:
            cells.append(run.note)
        rows.append(cells)
    return header, rows


def _cell_rows(report: Report) -> tuple[list[str], list[list[Any]]]:
    header = ["#", *report.cell_keys]
    for metric in report.metrics:
        header += [f"{metric} final", f"{metric} best"]
    header += ["n", "missing", report.aggregate, "runs"]
    rows = []
    for rank, cell in enumerate(report.cells, 1):
        cells = [str(rank), *[cell.params[k] for k in report.cell_keys]]
        for metric in report.metrics:
            cells += [_format_stat(cell.stat(metric, "final")), _format_stat(cell.stat(metric, "best"))]
        chosen = cell.stat(report.metric)
        cells += [chosen.n, chosen.missing, " ".join(cell.values), " ".join(report.name(r) for r in cell.runs)]
        rows.append(cells)
    return header, rows


def _comparison_lines(report: Report) -> list[str]:
    comparison = report.comparison
    reference = comparison.reference
    lines = ["", f"## Against published values ({reference.path.name})", ""]
    lines += [f"> {line}" for line in reference.comments if line]
    if reference.comments:
        lines.append("")
    lines += [comparison.summary() + ". Ours: the final value" + (" (mean ± std over the cell)" if report.cells
              is not None else "") + "; difference: ours - published.", ""]
    ours_keys = [k for k in (report.cell_keys if report.cells is not None else report.varying)
                 if k not in reference.keys]
    with_sources = any(row["source"] for row in comparison.rows)
    header = [*reference.keys, *reference.info, *[f"ours: {k}" for k in ours_keys], "metric", "published", "ours",
              "difference", "n"] + (["source"] if with_sources else [])
    rows = []
    for row in comparison.rows:
        ours = _format_stat(Stats(row["ours"], row["std"], row["n"], 0))
        cells = [*[row[k] for k in [*reference.keys, *reference.info]], *[row["ours_params"].get(k, "") for k in ours_keys],
                 row["metric"], _format(row["published"]), ours, _format(row["difference"]), row["n"]]
        rows.append(cells + ([row["source"]] if with_sources else []))
    return lines + _table(header, rows)


def markdown(report: Report, heatmap: str | None = None) -> str:
    order = {"max": "highest first", "min": "lowest first"}.get(report.direction, "highest first")
    lines = [f"# Sweep report: {report.root}", ""]
    if report.cells is None:
        lines.append(f"{len(report.runs)} run(s), sorted by {report.metric} (final value, {order}). Final: the "
                     "last validation; best: the best validation after training started (the untrained "
                     "model's score at step 0 is left out); epochs: the epochs the run started.")
    else:
        lines.append(f"{len(report.runs)} run(s) in {len(report.cells)} cell(s) that differ only in "
                     f"{report.aggregate}, sorted by {report.metric} (mean final value, {order}). Each value: the "
                     "mean ± the sample standard deviation (n - 1; none for one value) over the cell's runs of the "
                     "final (last validation) or best value; n: runs with a final "
                     f"{report.metric}; missing: runs without one, left out.")
    if report.common:
        lines.append("")
        lines.append("Overrides of every run: " + " ".join(f"`{o}`" for o in report.common))
    lines.append("")
    header, rows = _run_rows(report) if report.cells is None else _cell_rows(report)
    lines += _table(header, rows)
    if heatmap:
        grid = report.grid
        lines += ["", f"![{report.metric} by {grid['rows']} x {grid['cols']}]({heatmap})"]
    if report.comparison is not None:
        lines += _comparison_lines(report)
    return "\n".join(lines) + "\n"


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def document(report: Report, heatmap: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "root": str(report.root),
        "metric": report.metric,
        "direction": report.direction,
        "varying": report.varying,
        "common_overrides": report.common,
        "grid": report.grid,
        "heatmap": heatmap,
        "aggregate": report.aggregate,
        "runs": [
            {
                "rank": rank,
                "run": report.name(run),
                "folder": str(run.folder.resolve()),
                "params": report.params(run),
                "overrides": run.overrides,
                "metrics": {m: {k: _json_number(v) for k, v in values.items()} for m, values in run.metrics.items()},
                "epochs": run.epochs,
                "step": run.step,
                "note": run.note,
            }
            for rank, run in enumerate(report.runs, 1)
        ],
    }
    if report.cells is not None:
        result["std"] = "sample standard deviation (n - 1); null for n < 2"
        result["cells"] = [
            {"rank": rank, "params": cell.params, report.aggregate: cell.values,
             "runs": [report.name(r) for r in cell.runs],
             "metrics": {m: {which: s.as_dict() for which, s in values.items()} for m, values in cell.metrics.items()}}
            for rank, cell in enumerate(report.cells, 1)
        ]
    if report.comparison is not None:
        comparison = report.comparison
        result["reference"] = {"file": str(comparison.reference.path), "comments": comparison.reference.comments,
                               "matched_keys": comparison.matched_keys, "unmatched_keys": comparison.unmatched_keys,
                               "unmatched_rows": comparison.unmatched_rows,
                               "rows": [{k: _json_number(v) for k, v in row.items()} for row in comparison.rows]}
    return result


def _number_text(value: float | None) -> str:
    return "" if value is None else repr(value)


def write_csv(report: Report, path: Path) -> None:
    if report.cells is not None:
        _write_cells_csv(report, path)
        return
    columns = ["rank", *report.varying]
    for metric in report.metrics:
        columns += [f"{metric} final", f"{metric} best", f"{metric} untrained"]
    columns += ["epochs", "step", "run", "folder", "overrides", "note"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for rank, run in enumerate(report.runs, 1):
            row: dict[str, Any] = {"rank": rank, **report.params(run)}
            for metric in report.metrics:
                for which in ("final", "best", "untrained"):
                    row[f"{metric} {which}"] = _number_text(run.value(metric, which))
            row.update(epochs="" if run.epochs is None else run.epochs, step="" if run.step is None else run.step,
                       run=report.name(run), folder=str(run.folder.resolve()), overrides=" ".join(run.overrides),
                       note=run.note)
            writer.writerow(row)


def _write_cells_csv(report: Report, path: Path) -> None:
    """One row per cell: per metric and final/best, mean, std (n - 1), n and missing."""
    columns = ["rank", *report.cell_keys]
    for metric in report.metrics:
        for which in ("final", "best"):
            columns += [f"{metric} {which} {part}" for part in ("mean", "std", "n", "missing")]
    columns += [report.aggregate, "runs"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for rank, cell in enumerate(report.cells, 1):
            row: dict[str, Any] = {"rank": rank, **cell.params}
            for metric in report.metrics:
                for which in ("final", "best"):
                    stat = cell.stat(metric, which)
                    row.update({f"{metric} {which} mean": _number_text(stat.mean),
                                f"{metric} {which} std": _number_text(stat.std),
                                f"{metric} {which} n": stat.n, f"{metric} {which} missing": stat.missing})
            row.update({report.aggregate: " ".join(cell.values), "runs": " ".join(report.name(r) for r in cell.runs)})
            writer.writerow(row)


def write_reference_csv(report: Report, path: Path) -> None:
    comparison = report.comparison
    keys = [*comparison.reference.keys, *comparison.reference.info]
    ours_keys = report.cell_keys if report.cells is not None else report.varying
    columns = [*keys, *[f"ours: {k}" for k in ours_keys], "metric", "published", "ours", "ours std", "n",
               "difference", "source", "runs"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in comparison.rows:
            writer.writerow({**{k: row[k] for k in keys}, **{f"ours: {k}": row["ours_params"].get(k, "") for k in ours_keys},
                             "metric": row["metric"], "published": repr(row["published"]),
                             "ours": _number_text(row["ours"]), "ours std": _number_text(row["std"]), "n": row["n"],
                             "difference": _number_text(row["difference"]), "source": row["source"],
                             "runs": " ".join(row["runs"])})


def _remove_stale(out: Path, previous: dict[str, Any], report: Report, heatmap: str | None) -> None:
    """Files an earlier report wrote that this one does not: they would no longer match."""
    if not heatmap and previous.get("heatmap"):
        (out / "heatmap.png").unlink(missing_ok=True)
    if report.comparison is None and previous.get("reference"):
        (out / "reference.csv").unlink(missing_ok=True)


def write_report(report: Report, out: Path) -> list[Path]:
    """report.md, report.csv, report.json, heatmap.png for a full 2-D grid, reference.csv
    with --reference, in `out`."""
    from ganforge.cli.files import write_atomically

    heatmap = "heatmap.png" if report.grid is not None else None
    previous = out / "report.json"
    if previous.is_file():
        try:
            earlier = json.loads(previous.read_text())
            _remove_stale(out, earlier if isinstance(earlier, dict) else {}, report, heatmap)
        except (OSError, ValueError):
            pass
    written = [out / "report.md", out / "report.csv", out / "report.json"]
    if heatmap:
        write_atomically(out / heatmap, lambda temporary: plot_heatmap(report, temporary))
        written.append(out / heatmap)
    if report.comparison is not None:
        write_atomically(out / "reference.csv", lambda temporary: write_reference_csv(report, temporary))
        written.append(out / "reference.csv")
    write_atomically(out / "report.csv", lambda temporary: write_csv(report, temporary))
    text = json.dumps(document(report, heatmap), indent=2, allow_nan=False)
    write_atomically(out / "report.json", lambda temporary: temporary.write_text(text + "\n"))
    write_atomically(out / "report.md", lambda temporary: temporary.write_text(markdown(report, heatmap)))
    return written
