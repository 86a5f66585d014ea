"""`--reference FILE`: published values beside ours, with the difference.

The file is a CSV: one row per published value, with columns

- the swept keys, named as in the overrides (`gan_loss`, `model.discriminator.norm`,
  `penalty`, ...): a run (or a cell of `--aggregate`) matches a row when its overrides
  give each of them the row's value (numbers compare as numbers; an empty value matches
  anything);
- `metric` (`fid` means `val/fid`) and `value`;
- `source`, or `#` comment lines at the top, naming where the numbers come from;
- any column named `paper.*` (the paper's own setting: dataset, architecture, learning
  rate) is shown and not matched.

A key no run sets cannot be matched: such keys are named in one line and left out of the
matching. Ours is the final value (the cell's mean with `--aggregate`); difference =
ours - published.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganforge.cli.report.runs import normalize_metric
from ganforge.errors import UserError

__all__ = ["Reference", "Comparison", "read_reference", "compare"]

SPECIAL = ("metric", "value", "source")


@dataclass
class Reference:
    path: Path
    keys: list[str]                 # the columns matched against overrides
    info: list[str]                 # paper.* columns
    rows: list[dict[str, str]]
    comments: list[str] = field(default_factory=list)  # the file's # lines, without the #


@dataclass
class Comparison:
    reference: Reference
    rows: list[dict[str, Any]]      # per published row and match: its keys, info, metric, published, ours, ...
    matched_keys: list[str]
    unmatched_keys: list[str]       # keys no run sets
    unmatched_rows: int             # published rows without a run of ours

    def summary(self) -> str:
        """One line: what was matched and what could not be."""
        total = len(self.reference.rows)
        text = (f"{total - self.unmatched_rows} of {total} published value(s) matched on "
                f"{', '.join(self.matched_keys) or 'nothing'}")
        if self.unmatched_keys:
            text += f"; keys no run sets, not matched: {', '.join(self.unmatched_keys)}"
        if self.unmatched_rows:
            text += f"; {self.unmatched_rows} published row(s) without a run"
        return text


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_reference(path: Path) -> Reference:
    path = Path(path).expanduser()
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"--reference {path}: cannot read it ({type(error).__name__}): pass a CSV of published "
                        "values") from None
    comments = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(body)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in ("metric", "value") if c not in columns]
    if missing:
        raise UserError(f"--reference {path} has no column(s) {', '.join(missing)}: it needs the swept keys, "
                        "metric and value (and source)")
    rows = []
    for number, row in enumerate(reader, 2 + len(lines) - len(body)):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if _number(row["value"]) is None:
            raise UserError(f"--reference {path}: the value {row['value']!r} in row {number} is not a number")
        rows.append(row)
    if "source" not in columns and not comments:
        raise UserError(f"--reference {path} does not say where its numbers come from: add a source column or "
                        "# comment lines at the top")
    keys = [c for c in columns if c not in SPECIAL and not c.startswith("paper.")]
    info = [c for c in columns if c.startswith("paper.")]
    return Reference(path=path, keys=keys, info=info, rows=rows, comments=comments)


def _same(ours: str | None, theirs: str) -> bool:
    if theirs == "":
        return True
    if ours is None:
        return False
    a, b = _number(ours), _number(theirs)
    return a == b if a is not None and b is not None else ours == theirs


def compare(report: Any, reference: Reference) -> Comparison:
    """Each published row beside each of our runs (or cells) whose overrides match it: one
    row per match, or one with no value of ours when nothing matches."""
    aggregated = report.cells is not None
    entries = report.cells if aggregated else report.runs
    overrides = [e.overrides if aggregated else e.params for e in entries]  # a cell's: what its runs share
    set_anywhere = {k for o in overrides for k in o}
    matched_keys = [k for k in reference.keys if k in set_anywhere]
    unmatched_keys = [k for k in reference.keys if k not in set_anywhere]
    ours_keys = report.cell_keys if aggregated else report.varying
    rows, unmatched_rows = [], 0
    for published in reference.rows:
        metric = normalize_metric(published["metric"])
        value = float(published["value"])
        base: dict[str, Any] = {k: published.get(k, "") for k in [*reference.keys, *reference.info]}
        base.update(metric=metric, published=value, source=published.get("source", ""))
        found = [(e, o) for e, o in zip(entries, overrides)
                 if all(_same(o.get(k), published.get(k, "")) for k in matched_keys)]
        if not found:
            unmatched_rows += 1
            rows.append({**base, "ours_params": {}, "ours": None, "std": None, "n": 0, "difference": None, "runs": []})
        for entry, entry_overrides in found:
            if aggregated:
                stat = entry.stat(metric)
                ours, std, n, names = stat.mean, stat.std, stat.n, [report.name(r) for r in entry.runs]
            else:
                ours = entry.value(metric)
                std, n, names = None, int(ours is not None), [report.name(entry)]
            rows.append({**base, "ours_params": {k: entry_overrides.get(k, "") for k in ours_keys}, "ours": ours,
                         "std": std, "n": n, "difference": None if ours is None else ours - value, "runs": names})
    return Comparison(reference=reference, rows=rows, matched_keys=matched_keys, unmatched_keys=unmatched_keys,
                      unmatched_rows=unmatched_rows)
