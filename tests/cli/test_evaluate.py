"""`python eval.py` as a user runs it: a checkpoint's metrics, on its run's data or any other."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from ganforge.metrics import InceptionFeatures
from tests.cli.helpers import TINY, run_folders, run_script, run_train


def evaluate(*overrides: str, log_dir: Path, env: dict | None = None):
    return run_script("eval.py", f"paths.log_dir={log_dir}", *overrides, env=env)


def result_of(log_dir: Path) -> dict:
    [path] = list(log_dir.glob("eval/*/*/metrics.json"))
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("run")
    result = run_train(*TINY, "model.ema_decay=0.9", log_dir=log_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(log_dir)
    return run


@pytest.mark.slow
def test_scoring_a_checkpoint_on_its_runs_data_gives_the_numbers_the_run_logged(trained_run, tmp_path):
    result = evaluate(f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", log_dir=tmp_path,
                      env={"TORCH_HOME": str(tmp_path / "no-cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FID/KID skipped" in result.stdout  # no Inception weights here: one line, not a failure
    report = result_of(tmp_path)
    assert report["ema"] is True and "the run that wrote" in report["data"]
    with open(trained_run / "metrics.csv") as file:
        logged = [row for row in csv.DictReader(file) if row.get("val/psnr")][-1]
    for key in ("val/psnr", "val/ssim", "val/l1", "val/psnr_gray"):
        assert report["metrics"][key] == pytest.approx(float(logged[key]), rel=1e-5), key


@pytest.mark.slow
def test_fid_and_kid_with_a_local_inception_file_on_another_dataset(trained_run, tmp_path, image_folder):
    weights = tmp_path / "inception.pth"
    torch.manual_seed(0)
    torch.save(InceptionFeatures().state_dict(), weights)  # random weights: enough to test the wiring
    result = evaluate(f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}", "data=folder",
                      f"data.root={image_folder}", "data.crop_size=32", "data.val_fraction=0.5",
                      "data.batch_size=1", f"metrics.fid.weights={weights}", log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = result_of(tmp_path)["metrics"]
    assert "data=folder" in result_of(tmp_path)["data"]
    for key in ("val/fid", "val/kid_mean", "val/psnr", "val/ssim"):
        assert math.isfinite(metrics[key]), key
    assert metrics["val/fid"] > 0


@pytest.mark.slow
def test_compression_reports_the_bits_of_real_files(compression_checkpoint, tmp_path):
    result = evaluate(f"ckpt_path={compression_checkpoint}", "data=sample", "data.val_full_images=true",
                      "data.val_scale=0.25", "data.scale=0.25", "data.crop_size=48", log_dir=tmp_path,
                      env={"TORCH_HOME": str(tmp_path / "no-cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = result_of(tmp_path)["metrics"]
    # chelsea at 1/4 scale, 75x113: the coded size lies between nothing and the fixed-length
    # cost of its padded latent (C log2 L bits per symbol, 80x128 pixels / 16^2 symbols per
    # channel) plus the file's header (at most 64 bytes without a checkpoint path).
    pixels = 75 * 113
    ceiling = metrics["val/bpp_bound"] * (80 * 128) / pixels + 64 * 8 / pixels
    assert 0 < metrics["val/bpp_coded"] < ceiling
    assert {"val/psnr", "val/bpp_entropy"} <= set(metrics)
    assert "val/ms_ssim" not in metrics  # 75 pixels is too small for its five scales


@pytest.mark.parametrize("case", ["missing checkpoint", "not a checkpoint", "no data to score on", "wrong data kind"])
def test_bad_input_is_one_line_and_a_non_zero_exit(case, pix2pix_checkpoint, tmp_path, paired_folder):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"these are not the weights you are looking for")
    args, words = {
        "missing checkpoint": ([f"ckpt_path={tmp_path / 'none.ckpt'}", "data=sample"], "checkpoint not found"),
        "not a checkpoint": ([f"ckpt_path={junk}", "data=sample"], "cannot read checkpoint"),
        "no data to score on": ([f"ckpt_path={pix2pix_checkpoint}"], "no config.yaml beside"),
        "wrong data kind": ([f"ckpt_path={pix2pix_checkpoint}", "data=paired", f"data.root={paired_folder}",
                             "data.crop_size=32", "data.load_size=32"], "colorizes single images"),
    }[case]
    result = evaluate(*args, log_dir=tmp_path / "logs")
    assert result.returncode != 0
    assert words in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
