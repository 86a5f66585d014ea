"""`ganforge report --aggregate seed` and `--reference FILE` on a synthetic sweep written by
hand (2 norms x 2 penalties x 2 seeds, plus a crashed third seed): every expected number
comes from numpy on the same values."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ganforge.cli.report import main

NORMS, PENALTIES, SEEDS = ("spectral", "layer"), ("none", "gp"), (0, 1)
COMMON = ["gan_loss=vanilla", "trainer.max_epochs=2"]


def fid_series(norm: str, penalty: str, seed: int) -> list[float]:
    """val/fid at step 0 (untrained), after epoch 1, after epoch 2: distinct per run."""
    base = {"spectral": 30.0, "layer": 40.0}[norm] + {"none": 5.0, "gp": 0.0}[penalty]
    return [300.0 + seed, base + 1.0 - 1.5 * seed, base + 2.5 * seed ** 2 + 0.25 * seed]


def write_run(folder: Path, overrides: list[str], fid: list[float] | None) -> None:
    """A run folder as train.py leaves it (metrics.csv only when `fid` is given)."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, "logger=csv", *COMMON]))
    config = {"model": {}, "trainer": {"max_epochs": 2, "max_steps": -1}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    if fid is None:
        return
    with open(folder / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["epoch", "step", "train/loss_d", "val/fid", "val/psnr"])
        writer.writeheader()
        writer.writerow({"epoch": 0, "step": 0, "val/fid": fid[0], "val/psnr": 10.0})
        for epoch, value in enumerate(fid[1:]):
            writer.writerow({"epoch": epoch, "step": 4 * epoch + 3, "train/loss_d": 0.5})
            writer.writerow({"epoch": epoch, "step": 4 * epoch + 4, "val/fid": value, "val/psnr": 20.0 - value / 10})


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "multirun" / "2026-02-02" / "10-00-00"
    number = 0
    for norm in NORMS:
        for penalty in PENALTIES:
            for seed in SEEDS:
                write_run(root / str(number), [f"model.discriminator.norm={norm}", f"penalty={penalty}",
                                               f"seed={seed}"], fid_series(norm, penalty, seed))
                number += 1
    # A third seed of (layer, gp) that crashed before its first log: missing, not a value.
    write_run(root / str(number), ["model.discriminator.norm=layer", "penalty=gp", "seed=2"], None)
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def expected_cell(norm: str, penalty: str) -> dict[str, float]:
    finals = np.array([fid_series(norm, penalty, s)[-1] for s in SEEDS])
    bests = np.array([min(fid_series(norm, penalty, s)[1:]) for s in SEEDS])
    return {"final mean": finals.mean(), "final std": finals.std(ddof=1), "best mean": bests.mean(),
            "best std": bests.std(ddof=1)}


def test_runs_that_differ_only_in_the_seed_become_one_cell_with_numpy_s_mean_and_std(sweep, capsys):
    main([str(sweep), "--metric", "fid", "--aggregate", "seed"])
    rows = read_csv(sweep / "report.csv")
    assert len(rows) == 4
    for row in rows:
        want = expected_cell(row["model.discriminator.norm"], row["penalty"])
        for name, value in want.items():
            assert float(row[f"val/fid {name}"]) == pytest.approx(value, rel=1e-12), (row, name)
        crashed = (row["model.discriminator.norm"], row["penalty"]) == ("layer", "gp")
        assert row["val/fid final n"] == "2" and row["val/fid final missing"] == ("1" if crashed else "0")
        assert row["seed"] == ("0 1 2" if crashed else "0 1")
    # Sorted by the mean final FID, lowest first.
    means = [float(r["val/fid final mean"]) for r in rows]
    assert means == sorted(means)
    document = json.loads((sweep / "report.json").read_text())
    assert document["aggregate"] == "seed" and "n - 1" in document["std"]
    first = document["cells"][0]
    want = expected_cell(first["params"]["model.discriminator.norm"], first["params"]["penalty"])
    assert first["metrics"]["val/fid"]["final"]["std"] == pytest.approx(want["final std"], rel=1e-12)
    assert len(document["runs"]) == 9  # the runs are still listed one by one
    out = capsys.readouterr().out
    assert out == (sweep / "report.md").read_text()
    top = next(line for line in out.splitlines() if line.startswith("| 1 |"))
    cell = f"{want['final mean']:.4g} ± {want['final std']:.4g}"
    assert cell in top and "sample standard deviation (n - 1" in out


def test_the_aggregated_grid_gets_a_heatmap_of_the_cells(sweep):
    main([str(sweep), "--metric", "val/fid", "--aggregate", "seed"])
    document = json.loads((sweep / "report.json").read_text())
    assert document["grid"] == {"rows": "model.discriminator.norm", "cols": "penalty", "row_values": list(NORMS),
                                "col_values": list(PENALTIES)}
    with Image.open(sweep / "heatmap.png") as image:
        assert image.format == "PNG" and image.width > 100 and image.height > 100
    # Without --aggregate, three keys vary: no grid, no heatmap (and the stale one goes).
    main([str(sweep), "--metric", "val/fid"])
    assert json.loads((sweep / "report.json").read_text())["grid"] is None
    assert not (sweep / "heatmap.png").exists() and len(read_csv(sweep / "report.csv")) == 9


REFERENCE = """\
# Made-up published values, for the test only.
# Source: nowhere, Table 0.
model.discriminator.norm,penalty,model.n_critic,paper.dataset,metric,value
spectral,none,1,cifar10,fid,33.5
layer,gp,5,cifar10,val/fid,38.25
batch,gp,1,cifar10,fid,50
"""


def test_published_values_sit_beside_ours_with_the_difference(sweep, tmp_path, capsys):
    reference = tmp_path / "published.csv"
    reference.write_text(REFERENCE)
    main([str(sweep), "--metric", "fid", "--aggregate", "seed", "--reference", str(reference)])
    captured = capsys.readouterr()
    rows = read_csv(sweep / "reference.csv")
    assert [(r["model.discriminator.norm"], r["penalty"]) for r in rows] == [("spectral", "none"), ("layer", "gp"),
                                                                             ("batch", "gp")]
    for row, published in zip(rows[:2], (33.5, 38.25)):
        ours = expected_cell(row["model.discriminator.norm"], row["penalty"])["final mean"]
        assert float(row["published"]) == published and row["metric"] == "val/fid" and row["n"] == "2"
        assert float(row["ours"]) == pytest.approx(ours, rel=1e-12)
        assert float(row["difference"]) == pytest.approx(ours - published, rel=1e-12)
        assert row["paper.dataset"] == "cifar10"
    assert rows[2]["ours"] == rows[2]["difference"] == "" and rows[2]["n"] == "0"  # we did not run batch norm
    # One line names what could not be matched: a key no run sets, a row without a run.
    line = "2 of 3 published value(s) matched on model.discriminator.norm, penalty; keys no run sets, not matched: " \
           "model.n_critic; 1 published row(s) without a run"
    assert line in captured.err and line in captured.out
    assert "> Source: nowhere, Table 0." in captured.out
    document = json.loads((sweep / "report.json").read_text())
    assert document["reference"]["unmatched_keys"] == ["model.n_critic"]
    # Without --reference the next report drops the stale reference.csv.
    main([str(sweep), "--metric", "fid", "--aggregate", "seed"])
    assert not (sweep / "reference.csv").exists()


def test_the_reference_join_works_run_by_run_too(sweep, tmp_path):
    reference = tmp_path / "published.csv"
    reference.write_text("model.discriminator.norm,penalty,seed,metric,value,source\nlayer,none,1,fid,40,Table 1\n")
    main([str(sweep), "--metric", "fid", "--reference", str(reference)])
    [row] = read_csv(sweep / "reference.csv")
    ours = fid_series("layer", "none", 1)[-1]
    assert float(row["ours"]) == ours and float(row["difference"]) == pytest.approx(ours - 40)
    assert row["source"] == "Table 1" and row["runs"] == "5"


@pytest.mark.parametrize("arguments, reference, words", [
    (["--aggregate", "act"], None, "--aggregate act: the runs do not differ in act; the keys they differ in: "
                                   "model.discriminator.norm, penalty, seed"),
    (["--reference", "{ref}"], "norm,metric\nbatch,fid\n", "has no column(s) value"),
    (["--reference", "{ref}"], "norm,metric,value\nbatch,fid,1\n", "does not say where its numbers come from"),
    (["--reference", "{ref}"], "norm,metric,value,source\nbatch,fid,abc,x\n", "the value 'abc' in row 2 is not a number"),
    (["--reference", "{tmp}/missing.csv"], None, "cannot read it"),
])
def test_mistakes_end_in_one_line_and_exit_2(sweep, tmp_path, capsys, arguments, reference, words):
    path = tmp_path / "ref.csv"
    if reference is not None:
        path.write_text(reference)
    with pytest.raises(SystemExit) as exit_info:
        main([str(sweep), *[a.format(ref=path, tmp=tmp_path) for a in arguments]])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and len(err.strip().splitlines()) == 1, err
    assert not (sweep / "report.csv").exists()


def test_the_kurach_reference_file_reads_and_names_its_source():
    from ganforge.cli import CONFIG_DIR
    from ganforge.cli.report import read_reference

    reference = read_reference(CONFIG_DIR.parent / "docs" / "reference" / "kurach2019.csv")
    assert reference.keys == ["gan_loss", "model.discriminator.norm", "penalty", "penalty.weight", "model.n_critic"]
    assert reference.info[:2] == ["paper.dataset", "paper.architecture"]
    assert len(reference.rows) == 36 and all(row["source"].startswith("google/compare_gan@908fee2") for row in reference.rows)
    assert any("arXiv:1807.04720" in line for line in reference.comments)
    assert any(line.startswith("WHAT IS MISSING") for line in reference.comments)
    # The published best SNDCGAN on CIFAR-10 with spectral norm and no penalty ("line 7").
    assert reference.rows[6]["value"] == "25.27" and reference.rows[6]["model.discriminator.norm"] == "spectral"
