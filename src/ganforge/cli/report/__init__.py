"""`ganforge report`: one table of a sweep's runs, sorted by a validation metric.

    ganforge report outputs/multirun/2026-01-31/14-02-51 [--metric val/ssim] [--out DIR]
                    [--aggregate seed] [--reference docs/reference/kurach2019.csv]

Reads every run folder under the given folder (a sweep, one run, or a folder holding
several sweeps): its command-line overrides (.hydra/overrides.yaml, less paths.*,
hydra.* and logger ones) and its metrics.csv. For each val/* metric it reports the final
value (the last validation) and the best one (highest PSNR/SSIM/MS-SSIM, lowest L1, FID,
KID, bpp, loss), both counted from the first validation after training started: the
untrained model's score, which train.py logs at step 0, is reported apart. Writes
report.md, report.csv and report.json into the folder (or --out) and prints the table.
When the sweep varies exactly two overrides over a full grid (norm x act), heatmap.png
shows the chosen metric's final value per cell.

--aggregate KEY groups the runs that differ only in KEY (a seed, say) and reports each
group's mean, sample standard deviation (n - 1) and count; --reference FILE puts
published values beside ours (see `ganforge.cli.report.reference`).

The modules, one idea each: runs (reading runs), table (building the table), aggregate,
reference, write (md, csv, json), heatmap (plotting).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ganforge.cli.report.aggregate import Cell, Stats, aggregate
from ganforge.cli.report.reference import compare, read_reference
from ganforge.cli.report.runs import Run, find_runs, metric_direction, read_run
from ganforge.cli.report.table import Report, build_report
from ganforge.cli.report.write import markdown, write_report
from ganforge.errors import UserError

__all__ = ["main", "Run", "Report", "Cell", "Stats", "find_runs", "read_run", "build_report", "aggregate",
           "read_reference", "compare", "metric_direction", "write_report"]


def main(argv: Sequence[str] | None = None) -> None:
    from ganforge.cli.errors import report_user_errors

    parser = argparse.ArgumentParser(prog="ganforge report", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a sweep folder (outputs/multirun/<date>/<time>), one run folder, "
                                                  "or a folder holding several sweeps")
    parser.add_argument("--metric", default="val/psnr",
                        help="the val/* metric to sort by and to show in the heatmap (default: val/psnr; "
                             "'ssim' means val/ssim)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: the folder)")
    parser.add_argument("--aggregate", metavar="KEY", default=None,
                        help="a swept key (e.g. seed): runs that differ only in it become one row with the mean, "
                             "sample standard deviation (n - 1) and count of each metric")
    parser.add_argument("--reference", metavar="FILE", type=Path, default=None,
                        help="a CSV of published values (the swept keys as in the overrides, metric, value, source) "
                             "to print beside ours with the difference")
    args = parser.parse_args(argv)
    with report_user_errors():
        reference = read_reference(args.reference) if args.reference is not None else None
        report = build_report(args.folder, args.metric, aggregate_key=args.aggregate)
        if reference is not None:
            report.comparison = compare(report, reference)
        out = (args.out or args.folder).expanduser()
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file: pass a folder")
        written = write_report(report, out)
        sys.stdout.write(markdown(report, "heatmap.png" if report.grid is not None else None))
        sys.stdout.flush()
        if report.comparison is not None:
            print(report.comparison.summary(), file=sys.stderr)
        print(f"wrote {', '.join(p.name for p in written)} in {out}", file=sys.stderr)
