"""`ganforge report`: a sweep's runs as one table (md, csv, json) and a heatmap for a 2-D grid.

The sweeps are written by hand, so every expected number is known; one slow test reads a
real 2 x 2 multirun of train.py.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from ganforge.cli.report import main, metric_direction
from tests.cli.helpers import REPO, TINY, run_folders, run_train

COLUMNS = ["epoch", "step", "train/loss_d", "val/l1", "val/psnr", "val/ssim"]
COMMON = ["model.generator.ngf=4", "trainer.max_epochs=2"]


def metric_rows(psnr: list[float], l1: list[float], ssim: list[float]) -> list[dict]:
    """metrics.csv as train.py writes it: the untrained model at step 0, then a training row
    and a validation row per epoch (4 steps an epoch)."""
    rows = [{"epoch": 0, "step": 0, "val/psnr": psnr[0], "val/l1": l1[0], "val/ssim": ssim[0]}]
    for epoch, (p, l1_value, s) in enumerate(zip(psnr[1:], l1[1:], ssim[1:])):
        step = 4 * (epoch + 1)
        rows.append({"epoch": epoch, "step": step - 1, "train/loss_d": 0.7})
        rows.append({"epoch": epoch, "step": step, "val/psnr": p, "val/l1": l1_value, "val/ssim": s})
    return rows


def make_run(folder: Path, overrides: list[str], rows: list[dict] | None, max_epochs: int = 2) -> Path:
    """A run folder as train.py leaves it: .hydra/overrides.yaml, config.yaml and, unless
    `rows` is None (a crash), metrics.csv."""
    (folder / ".hydra").mkdir(parents=True)
    logged = ["paths.log_dir=/somewhere", "logger=csv", "hydra.job.chdir=false", "+logger.csv.prefix=x"]
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, *logged, *COMMON]))
    config = {"model": {"lambda_l1": 100.0}, "trainer": {"max_epochs": max_epochs, "max_steps": -1}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if rows is not None:
        with open(folder / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return folder


# Per (norm, act): val/psnr, val/l1, val/ssim at step 0 (untrained), after epoch 1, after epoch 2.
GRID = {
    ("instance", "relu"): ([18.0, 21.5, 20.25], [0.2, 0.05, 0.07], [0.99, 0.8, 0.85]),
    ("instance", "lrelu"): ([18.0, 22.0, 23.0], [0.2, 0.06, 0.04], [0.5, 0.81, 0.86]),
    ("pixel", "relu"): ([18.0, 19.0, 19.5], [0.2, 0.09, 0.08], [0.5, 0.7, 0.72]),
    ("pixel", "lrelu"): ([18.0, 24.0, 21.0], [0.2, 0.03, 0.06], [0.5, 0.9, 0.88]),
}


@pytest.fixture
def grid_sweep(tmp_path) -> Path:
    """A 2 x 2 multirun (norm=instance,pixel act=relu,lrelu) numbered as Hydra numbers it."""
    sweep = tmp_path / "multirun" / "2026-01-31" / "14-02-51"
    for number, ((norm, act), series) in enumerate(GRID.items()):
        make_run(sweep / str(number), [f"norm={norm}", f"act={act}"], metric_rows(*series))
    return sweep


def report(*args: str) -> None:
    main([str(a) for a in args])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def expected(series: list[float], direction: str) -> tuple[float, float]:
    """(final, best) of a validation series, leaving out the untrained first value."""
    trained = series[1:]
    return trained[-1], (max(trained) if direction == "max" else min(trained))


def test_each_run_gets_its_final_and_best_values_sorted_by_psnr(grid_sweep, capsys):
    report(grid_sweep)
    rows = read_csv(grid_sweep / "report.csv")
    assert len(rows) == 4
    for row in rows:
        psnr, l1, ssim = GRID[(row["norm"], row["act"])]
        for name, series, direction in (("val/psnr", psnr, "max"), ("val/l1", l1, "min"), ("val/ssim", ssim, "max")):
            final, best = expected(series, direction)
            assert float(row[f"{name} final"]) == final, (row["run"], name)
            assert float(row[f"{name} best"]) == best, (row["run"], name)
            assert float(row[f"{name} untrained"]) == series[0]
        assert row["epochs"] == "2" and row["step"] == "8" and row["note"] == ""
        assert Path(row["folder"]).parent == grid_sweep.resolve()
    # Sorted by the final PSNR, highest first: 23.0, 21.0, 20.25, 19.5.
    assert [float(r["val/psnr final"]) for r in rows] == [23.0, 21.0, 20.25, 19.5]
    assert [(r["norm"], r["act"]) for r in rows] == [("instance", "lrelu"), ("pixel", "lrelu"),
                                                     ("instance", "relu"), ("pixel", "relu")]
    # The untrained model's 0.99 SSIM is not the best value of that run.
    assert float(rows[2]["val/ssim best"]) == 0.85
    # Overrides: where and how the run was logged are left out; what every run shares is listed once.
    assert rows[0]["overrides"] == "norm=instance act=lrelu model.generator.ngf=4 trainer.max_epochs=2"
    document = json.loads((grid_sweep / "report.json").read_text())
    assert document["varying"] == ["norm", "act"] and document["common_overrides"] == COMMON
    assert document["runs"][0]["params"] == {"norm": "instance", "act": "lrelu"}
    assert document["runs"][0]["metrics"]["val/psnr"] == {"final": 23.0, "best": 23.0, "untrained": 18.0}
    # The markdown table, printed and written.
    out = capsys.readouterr().out
    markdown = (grid_sweep / "report.md").read_text()
    assert out == markdown
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert table[0].startswith("| # | norm | act | val/psnr final | val/psnr best | val/l1 final")
    assert len(table) == 2 + 4
    assert table[2].startswith("| 1 | instance | lrelu | 23 | 23 | 0.04 | 0.04 |")
    assert "`model.generator.ngf=4` `trainer.max_epochs=2`" in markdown
    assert "paths.log_dir" not in markdown and "logger" not in markdown


def test_a_full_two_key_grid_gets_a_heatmap(grid_sweep):
    report(grid_sweep, "--metric", "val/ssim")
    document = json.loads((grid_sweep / "report.json").read_text())
    assert document["grid"] == {"rows": "norm", "cols": "act", "row_values": ["instance", "pixel"],
                                "col_values": ["relu", "lrelu"]}
    assert document["heatmap"] == "heatmap.png"
    with Image.open(grid_sweep / "heatmap.png") as image:
        assert image.format == "PNG" and image.width > 100 and image.height > 100
    assert "![val/ssim by norm x act](heatmap.png)" in (grid_sweep / "report.md").read_text()
    assert not list(grid_sweep.glob(".heatmap.png*"))  # no temporary file left behind


def test_a_lower_is_better_metric_sorts_ascending(grid_sweep):
    report(grid_sweep, "--metric", "l1")  # short for val/l1
    rows = read_csv(grid_sweep / "report.csv")
    assert [float(r["val/l1 final"]) for r in rows] == [0.04, 0.06, 0.07, 0.08]
    assert list(rows[0])[3:6] == ["val/l1 final", "val/l1 best", "val/l1 untrained"]  # the chosen metric first
    assert metric_direction("val/ms_ssim") == "max" and metric_direction("val/bpp_entropy") == "min"
    assert metric_direction("val/fid") == "min" and metric_direction("val/kid") == "min"
    assert metric_direction("val/something") is None


def test_sweeps_that_are_not_a_full_grid_get_no_heatmap(tmp_path):
    one_key = tmp_path / "one_key"
    for number, norm in enumerate(["batch", "instance", "pixel"]):
        make_run(one_key / str(number), [f"norm={norm}"], metric_rows([18, 19 + number], [0.2, 0.1], [0.5, 0.6]))
    report(one_key)
    assert not (one_key / "heatmap.png").exists()
    assert json.loads((one_key / "report.json").read_text())["grid"] is None

    three_of_four = tmp_path / "three_of_four"
    for number, (norm, act) in enumerate([("batch", "relu"), ("batch", "elu"), ("pixel", "relu")]):
        make_run(three_of_four / str(number), [f"norm={norm}", f"act={act}"],
                 metric_rows([18, 20], [0.2, 0.1], [0.5, 0.6]))
    report(three_of_four)
    assert not (three_of_four / "heatmap.png").exists()
    assert json.loads((three_of_four / "report.json").read_text())["varying"] == ["norm", "act"]


def test_a_heatmap_from_an_earlier_report_goes_when_the_sweep_is_no_longer_a_grid(grid_sweep):
    report(grid_sweep)
    assert (grid_sweep / "heatmap.png").is_file()
    make_run(grid_sweep / "4", ["norm=batch", "act=relu"], metric_rows([18, 20], [0.2, 0.1], [0.5, 0.6]))
    report(grid_sweep)
    assert not (grid_sweep / "heatmap.png").exists()
    assert len(read_csv(grid_sweep / "report.csv")) == 5


def test_crashed_and_unfinished_runs_appear_with_a_note(grid_sweep):
    make_run(grid_sweep / "4", ["norm=batch", "act=relu"], None)  # crashed before metrics.csv
    make_run(grid_sweep / "5", ["norm=batch", "act=lrelu"], metric_rows([18.0], [0.2], [0.5]))  # untrained only
    make_run(grid_sweep / "6", ["norm=spectral", "act=relu"], metric_rows([18.0, 25.0], [0.2, 0.01], [0.5, 0.95]),
             max_epochs=10)  # stopped after its first epoch
    report(grid_sweep)
    rows = {r["run"]: r for r in read_csv(grid_sweep / "report.csv")}
    crashed, untrained, stopped = rows["4"], rows["5"], rows["6"]
    assert crashed["val/psnr final"] == crashed["val/psnr best"] == crashed["epochs"] == ""
    assert "no metrics.csv" in crashed["note"]
    assert untrained["val/psnr final"] == "" and untrained["val/psnr untrained"] == "18.0"
    assert "no validation after training started" in untrained["note"]
    assert float(stopped["val/psnr final"]) == 25.0 and stopped["note"].startswith("ended in epoch 1 of 10")
    order = [r["run"] for r in read_csv(grid_sweep / "report.csv")]
    assert order[0] == "6" and set(order[-2:]) == {"4", "5"}  # runs without a value come last
    markdown = (grid_sweep / "report.md").read_text()
    line = next(line for line in markdown.splitlines() if line.endswith("| 4 | " + crashed["note"] + " |"))
    assert "| batch | relu |  |  |" in line


def test_a_single_run_and_a_folder_of_sweeps(grid_sweep, tmp_path):
    report(grid_sweep / "2")
    [row] = read_csv(grid_sweep / "2" / "report.csv")
    assert float(row["val/psnr final"]) == 19.5 and row["run"] == "2"
    other = tmp_path / "multirun" / "2026-02-01" / "09-00-00"
    make_run(other / "0", ["norm=spectral", "act=elu"], metric_rows([18, 30], [0.2, 0.01], [0.5, 0.99]))
    out = tmp_path / "reports"
    report(tmp_path / "multirun", "--out", out)
    rows = read_csv(out / "report.csv")
    assert len(rows) == 5 and rows[0]["run"] == "2026-02-01/09-00-00/0"
    assert (out / "report.md").is_file() and (out / "report.json").is_file()
    assert not (tmp_path / "multirun" / "report.csv").exists()


@pytest.mark.parametrize("arguments, words", [
    (["{tmp}/no/such/sweep"], "does not exist"),
    (["{tmp}/empty"], "no runs in"),
    (["{sweep}", "--metric", "val/fid"],
     "--metric val/fid is not in any run's metrics.csv; choose one of: val/l1, val/psnr, val/ssim"),
    (["{sweep}", "--out", "{tmp}/a_file"], "is a file"),
])
def test_mistakes_end_in_one_line_and_exit_2(grid_sweep, tmp_path, capsys, arguments, words):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        report(*[a.format(tmp=tmp_path, sweep=grid_sweep) for a in arguments])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and len(err.strip().splitlines()) == 1, err
    assert not (grid_sweep / "report.csv").exists()


@pytest.mark.slow
def test_a_real_two_by_two_sweep(tmp_path):
    result = run_train("-m", "norm=instance,pixel", "act=relu,lrelu", *TINY, "~callbacks.sample_grid",
                       "~callbacks.model_checkpoint", "~callbacks.last_checkpoint",
                       "trainer.enable_checkpointing=false", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = sorted((tmp_path / "multirun").glob("*/*"))
    code = "import sys; sys.argv = ['ganforge report', *sys.argv[1:]]; from ganforge.cli.report import main; main()"
    done = subprocess.run([sys.executable, "-c", code, str(sweep)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    rows = read_csv(sweep / "report.csv")
    assert len(rows) == 4 and {(r["norm"], r["act"]) for r in rows} == {(n, a) for n in ("instance", "pixel")
                                                                       for a in ("relu", "lrelu")}
    for row in rows:
        run = sweep / row["run"]
        with open(run / "metrics.csv", newline="") as handle:
            psnr = [float(r["val/psnr"]) for r in csv.DictReader(handle) if r["val/psnr"]]
        assert len(psnr) == 2  # the untrained model, then after the one epoch
        assert float(row["val/psnr final"]) == psnr[-1] and float(row["val/psnr untrained"]) == psnr[0]
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert (config["norm"]["kind"], config["act"]["kind"]) == (row["norm"], row["act"])
        assert row["epochs"] == "1" and math.isfinite(float(row["val/ssim final"]))
    finals = [float(r["val/psnr final"]) for r in rows]
    assert finals == sorted(finals, reverse=True)
    with Image.open(sweep / "heatmap.png") as image:
        assert image.width > 0 and image.height > 0
    assert len([line for line in done.stdout.splitlines() if line.startswith("| ")]) == 1 + 4  # header, 4 runs
    assert len(run_folders(tmp_path)) == 4
