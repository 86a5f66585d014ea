"""`ganforge report`: one table of a sweep's runs, sorted by a validation metric.

    ganforge report outputs/multirun/2026-01-31/14-02-51 [--metric val/ssim] [--out DIR]

Reads every run folder under the given folder (a sweep, one run, or a folder holding
several sweeps): its command-line overrides (.hydra/overrides.yaml, less paths.*,
hydra.* and logger ones) and its metrics.csv. For each val/* metric it reports the final
value (the last validation) and the best one (highest PSNR/SSIM/MS-SSIM, lowest L1, FID,
KID, bpp, loss), both counted from the first validation after training started: the
untrained model's score, which train.py logs at step 0, is reported apart. Writes
report.md, report.csv and report.json into the folder (or --out) and prints the table.
When the sweep varies exactly two overrides over a full grid (norm x act), heatmap.png
shows the chosen metric's final value per cell.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ganforge.errors import UserError
from ganforge.overrides import about_output, split

__all__ = ["main", "Run", "find_runs", "read_run", "build_report", "metric_direction"]

HIGHER_IS_BETTER = ("psnr", "ssim")
LOWER_IS_BETTER = ("l1", "fid", "kid", "bpp", "loss", "mse", "lpips")
# Folders inside a run that never hold a run: not walked, for speed.
SKIPPED_FOLDERS = {".hydra", ".submitit", "checkpoints", "samples", "wandb", "tensorboard"}


def metric_direction(metric: str) -> str | None:
    """'max', 'min', or None when the name says nothing (then there is no best value)."""
    name = metric.rsplit("/", 1)[-1].lower()
    if any(word in name for word in HIGHER_IS_BETTER):
        return "max"
    if any(word in name for word in LOWER_IS_BETTER):
        return "min"
    return None


@dataclass
class Run:
    folder: Path
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)  # name -> final, best, untrained
    epochs: int | None = None   # epochs started (1 after one finished epoch); None without metrics.csv
    step: int | None = None     # the last logged global step
    note: str = ""

    def value(self, metric: str, which: str = "final") -> float | None:
        return self.metrics.get(metric, {}).get(which)


# --------------------------------------------------------------------------- finding runs


def _natural_key(path: Path) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)


def _is_train_config(path: Path) -> bool:
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(config, dict) and "model" in config and "trainer" in config


def _is_run(folder: Path) -> bool:
    """A folder train.py wrote: config.yaml + metrics.csv, or Hydra's .hydra/ of a train
    config (a run that crashed before config.yaml or metrics.csv was written)."""
    if (folder / "config.yaml").is_file() and (folder / "metrics.csv").is_file():
        return True
    if (folder / "config.yaml").is_file() and (folder / ".hydra").is_dir():
        return True
    return (folder / ".hydra" / "config.yaml").is_file() and _is_train_config(folder / ".hydra" / "config.yaml")


def find_runs(root: Path) -> list[Path]:
    """Run folders under `root` (or `root` itself), in the order Hydra numbered them."""
    if _is_run(root):
        return [root]
    runs = []
    for folder, subfolders, _ in os.walk(root):
        path = Path(folder)
        if path != root and _is_run(path):
            runs.append(path)
            subfolders.clear()  # runs do not nest
            continue
        subfolders[:] = [s for s in subfolders if s not in SKIPPED_FOLDERS]
    return sorted(runs, key=lambda p: _natural_key(p.relative_to(root)))


# --------------------------------------------------------------------------- reading a run


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _best(values: list[float], direction: str | None) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    if not finite or direction is None:
        return None
    return max(finite) if direction == "max" else min(finite)


def _read_overrides(folder: Path) -> tuple[list[str], str]:
    import yaml

    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return [], ""
    try:
        overrides = yaml.safe_load(path.read_text()) or []
    except (OSError, yaml.YAMLError) as error:
        return [], f"cannot read .hydra/overrides.yaml ({type(error).__name__})"
    if not isinstance(overrides, list):
        return [], "cannot read .hydra/overrides.yaml (not a list)"
    return [str(o) for o in overrides if not about_output(str(o))], ""


def _planned_epochs(folder: Path) -> int | None:
    """trainer.max_epochs when the run is bounded by epochs alone, else None."""
    from omegaconf import OmegaConf

    for path in (folder / "config.yaml", folder / ".hydra" / "config.yaml"):
        if path.is_file():
            try:
                config = OmegaConf.load(path)
                max_epochs = OmegaConf.select(config, "trainer.max_epochs", throw_on_resolution_failure=False)
                max_steps = OmegaConf.select(config, "trainer.max_steps", throw_on_resolution_failure=False)
                fast = OmegaConf.select(config, "trainer.fast_dev_run", throw_on_resolution_failure=False)
            except Exception:  # an unreadable config only costs the note
                return None
            if isinstance(max_epochs, int) and max_epochs > 0 and max_steps in (None, -1) and not fast:
                return max_epochs
            return None
    return None


def read_run(folder: Path) -> Run:
    """A run's overrides and, per val/* metric, its final, best and untrained values."""
    overrides, note = _read_overrides(folder)
    run = Run(folder=folder, overrides=overrides, note=note)
    path = folder / "metrics.csv"
    if not path.is_file():
        run.note = run.note or ("no metrics.csv: crashed before the first log, or trained without "
                                "the CSV logger (logger=default, csv or tensorboard write it)")
        return run
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        run.note = f"cannot read metrics.csv ({type(error).__name__})"
        return run
    trained = []  # rows logged after training started
    series: dict[str, tuple[list[float], list[float]]] = {}  # metric -> (untrained, trained)
    for row in rows:
        step = _number(row.get("step"))
        after = step is None or step > 0
        if after:
            trained.append(row)
        for key, text in row.items():
            if key and key.startswith("val/"):
                value = _number(text)
                if value is not None:
                    series.setdefault(key, ([], []))[1 if after else 0].append(value)
    for key, (untrained, values) in series.items():
        run.metrics[key] = {"final": values[-1] if values else None, "best": _best(values, metric_direction(key)),
                            "untrained": untrained[-1] if untrained else None}
    steps = [s for s in (_number(r.get("step")) for r in rows) if s is not None]
    run.step = int(max(steps)) if steps else None
    epochs = [e for e in (_number(r.get("epoch")) for r in trained) if e is not None]
    run.epochs = int(max(epochs)) + 1 if epochs else 0
    if not any(v["final"] is not None for v in run.metrics.values()):
        run.note = run.note or "no validation after training started (crashed or stopped in the first epoch)"
    else:
        planned = _planned_epochs(folder)
        if planned is not None and run.epochs < planned:
            run.note = run.note or f"ended in epoch {run.epochs} of {planned} (crashed, stopped, or still running)"
    return run


# --------------------------------------------------------------------------- the report


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

    def params(self, run: Run) -> dict[str, str]:
        values = dict(split(o) for o in run.overrides)
        return {key: values.get(key, "") for key in self.varying}

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
    per_run = [dict(split(o) for o in run.overrides) for run in runs]
    varying = [k for k in keys if len({values.get(k) for values in per_run}) > 1]
    common = [o for o in runs[0].overrides if split(o)[0] not in varying and all(o in r.overrides for r in runs)]
    return varying, common


def _full_grid(runs: list[Run], varying: list[str]) -> dict[str, Any] | None:
    """The two swept keys and their values in sweep order, when every pair is one run."""
    if len(varying) != 2:
        return None
    first, second = varying
    pairs = []
    for run in runs:
        values = dict(split(o) for o in run.overrides)
        if first not in values or second not in values:
            return None
        pairs.append((values[first], values[second]))
    row_values = list(dict.fromkeys(p[0] for p in pairs))
    col_values = list(dict.fromkeys(p[1] for p in pairs))
    if len(set(pairs)) != len(pairs) or len(pairs) != len(row_values) * len(col_values):
        return None
    return {"rows": first, "cols": second, "row_values": row_values, "col_values": col_values}


def _normalize_metric(metric: str) -> str:
    return metric if "/" in metric else f"val/{metric}"


def build_report(root: Path, metric: str = "val/psnr") -> Report:
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
    metric = _normalize_metric(metric)
    if present and metric not in present:
        raise UserError(f"--metric {metric} is not in any run's metrics.csv; choose one of: {', '.join(present)}")
    metrics = [metric, *[m for m in present if m != metric]] if metric in present else present
    direction = metric_direction(metric)
    varying, common = _varying_keys(runs)
    grid = _full_grid(runs, varying)

    def order(run: Run) -> tuple:
        value = run.value(metric)
        if value is None or math.isnan(value):
            return (1, 0.0)
        return (0, value if direction == "min" else -value)

    return Report(root=root, metric=metric, direction=direction, runs=sorted(runs, key=order), metrics=metrics,
                  varying=varying, common=common, grid=grid)


# --------------------------------------------------------------------------- writing it


def _format(value: float | None) -> str:
    if value is None:
        return ""
    return "nan" if math.isnan(value) else f"{value:.4g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(report: Report) -> list[dict[str, Any]]:
    """The table's rows as column -> value (numbers as floats, missing as None)."""
    rows = []
    for rank, run in enumerate(report.runs, 1):
        row: dict[str, Any] = {"rank": rank, **report.params(run)}
        for metric in report.metrics:
            row[f"{metric} final"] = run.value(metric, "final")
            row[f"{metric} best"] = run.value(metric, "best")
        row.update(epochs=run.epochs, run=report.name(run), note=run.note)
        rows.append(row)
    return rows


def markdown(report: Report, heatmap: str | None = None) -> str:
    order = {"max": "highest first", "min": "lowest first"}.get(report.direction, "highest first")
    lines = [f"# Sweep report: {report.root}", ""]
    lines.append(f"{len(report.runs)} run(s), sorted by {report.metric} (final value, {order}). Final: the "
                 "last validation; best: the best validation after training started (the untrained "
                 "model's score at step 0 is left out); epochs: the epochs the run started.")
    if report.common:
        lines.append("")
        lines.append("Overrides of every run: " + " ".join(f"`{o}`" for o in report.common))
    lines.append("")
    rows = _rows(report)
    with_notes = any(r["note"] for r in rows)
    header = ["#", *report.varying]
    for metric in report.metrics:
        header += [f"{metric} final", f"{metric} best"]
    header += ["epochs", "run"] + (["note"] if with_notes else [])
    lines.append("| " + " | ".join(_cell(h) for h in header) + " |")
    lines.append("|" + "|".join("---:" if h == "#" or "/" in h else "---" for h in header) + "|")
    for row in rows:
        cells = [str(row["rank"]), *[row[k] for k in report.varying]]
        for metric in report.metrics:
            cells += [_format(row[f"{metric} final"]), _format(row[f"{metric} best"])]
        cells += ["" if row["epochs"] is None else str(row["epochs"]), row["run"]]
        if with_notes:
            cells.append(row["note"])
        lines.append("| " + " | ".join(_cell(str(c)) for c in cells) + " |")
    if heatmap:
        grid = report.grid
        lines += ["", f"![{report.metric} by {grid['rows']} x {grid['cols']}]({heatmap})"]
    return "\n".join(lines) + "\n"


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def document(report: Report, heatmap: str | None = None) -> dict[str, Any]:
    return {
        "root": str(report.root),
        "metric": report.metric,
        "direction": report.direction,
        "varying": report.varying,
        "common_overrides": report.common,
        "grid": report.grid,
        "heatmap": heatmap,
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


def write_csv(report: Report, path: Path) -> None:
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
                    value = run.value(metric, which)
                    row[f"{metric} {which}"] = "" if value is None else repr(value)
            row.update(epochs="" if run.epochs is None else run.epochs, step="" if run.step is None else run.step,
                       run=report.name(run), folder=str(run.folder.resolve()), overrides=" ".join(run.overrides),
                       note=run.note)
            writer.writerow(row)


def plot_heatmap(report: Report, path: Path) -> None:
    """rows = the first swept key, columns = the second; each cell the final metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = report.grid
    assert grid is not None
    cells = {(report.params(r)[grid["rows"]], report.params(r)[grid["cols"]]): r for r in report.runs}
    values = np.full((len(grid["row_values"]), len(grid["col_values"])), np.nan)
    for i, row_value in enumerate(grid["row_values"]):
        for j, col_value in enumerate(grid["col_values"]):
            value = cells[(row_value, col_value)].value(report.metric)
            values[i, j] = np.nan if value is None else value
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low == high:
        low, high = low - 0.5, high + 0.5
    rows, cols = values.shape
    figure, axis = plt.subplots(figsize=(max(4.0, 1.3 * cols + 2.5), max(3.0, 0.7 * rows + 1.8)))
    colormap = "viridis_r" if report.direction == "min" else "viridis"  # brighter is better
    image = axis.imshow(np.ma.masked_invalid(values), cmap=colormap, vmin=low, vmax=high, aspect="auto")
    middle = (low + high) / 2
    for i in range(rows):
        for j in range(cols):
            value = values[i, j]
            if np.isfinite(value):
                bright = value > middle if report.direction != "min" else value < middle
                axis.text(j, i, f"{value:.4g}", ha="center", va="center", color="black" if bright else "white")
            else:
                axis.text(j, i, "no value", ha="center", va="center", color="grey", fontsize="small")
    axis.set_xticks(range(cols), [str(v) for v in grid["col_values"]])
    axis.set_yticks(range(rows), [str(v) for v in grid["row_values"]])
    axis.set_xlabel(grid["cols"])
    axis.set_ylabel(grid["rows"])
    axis.set_title(f"{report.metric} (final) by {grid['rows']} x {grid['cols']}")
    figure.colorbar(image, ax=axis, label=report.metric)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)


def write_report(report: Report, out: Path) -> list[Path]:
    """report.md, report.csv, report.json and, for a full 2-D grid, heatmap.png in `out`."""
    from ganforge.cli.files import write_atomically

    heatmap = "heatmap.png" if report.grid is not None else None
    previous = out / "report.json"
    if heatmap:
        write_atomically(out / heatmap, lambda temporary: plot_heatmap(report, temporary))
    elif previous.is_file():  # a heatmap an earlier report wrote would no longer match
        try:
            if json.loads(previous.read_text()).get("heatmap"):
                (out / "heatmap.png").unlink(missing_ok=True)
        except (OSError, ValueError, AttributeError):
            pass
    write_atomically(out / "report.csv", lambda temporary: write_csv(report, temporary))
    text = json.dumps(document(report, heatmap), indent=2, allow_nan=False)
    write_atomically(out / "report.json", lambda temporary: temporary.write_text(text + "\n"))
    write_atomically(out / "report.md", lambda temporary: temporary.write_text(markdown(report, heatmap)))
    written = [out / "report.md", out / "report.csv", out / "report.json"] + ([out / heatmap] if heatmap else [])
    return written


def main(argv: Sequence[str] | None = None) -> None:
    from ganforge.cli.errors import report_user_errors

    parser = argparse.ArgumentParser(prog="ganforge report", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a sweep folder (outputs/multirun/<date>/<time>), one run folder, "
                                                  "or a folder holding several sweeps")
    parser.add_argument("--metric", default="val/psnr",
                        help="the val/* metric to sort by and to show in the heatmap (default: val/psnr; "
                             "'ssim' means val/ssim)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: the folder)")
    args = parser.parse_args(argv)
    with report_user_errors():
        report = build_report(args.folder, args.metric)
        out = (args.out or args.folder).expanduser()
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file: pass a folder")
        written = write_report(report, out)
        sys.stdout.write(markdown(report, "heatmap.png" if report.grid is not None else None))
        sys.stdout.flush()
        print(f"wrote {', '.join(p.name for p in written)} in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
