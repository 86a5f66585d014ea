"""Generation from noise as a user runs it: `python train.py model=dcgan` (and sngan,
conditional) on the bundled digits with the generation metrics as validation, samples
from predict.py, the same numbers from eval.py, an export, a sweep with its heatmap and a
seed sweep aggregated by the report, and a killed run that resumes bit for bit with
DiffAugment and a lazy R1 on."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from tests.cli.helpers import run_cli, run_folders, run_script, run_train, stop_part_way

# Narrow networks, 8 batches of 16 digits an epoch, metrics every 4 batches on 64 reference digits.
TINY_GENERATION = [
    "model=dcgan", "model.generator.base_channels=16", "model.discriminator.base_channels=8",
    "data.batch_size=16", "data.reference_size=64", "trainer.limit_train_batches=8", "trainer.max_epochs=2",
    "callbacks.generation_metrics.every_n_steps=4", "callbacks.sample_grid.every_n_steps=4",
    "callbacks.sample_grid.num_images=4", "~callbacks.model_summary",
]


def rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def validations(run: Path, key: str = "val/clf_fid") -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[key])) for r in rows(run) if r.get(key)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One classifier cache for the module: the stand-in feature space is trained once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory, cache) -> Path:
    log_dir = tmp_path_factory.mktemp("dcgan")
    result = run_train(*TINY_GENERATION, f"callbacks.generation_metrics.cache_dir={cache}", log_dir=log_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(log_dir)
    return run


@pytest.mark.slow
def test_a_dcgan_run_validates_by_the_generation_metrics_and_keeps_the_best_by_fid(dcgan_run):
    fids = validations(dcgan_run)
    # The untrained model at step 0, then every 4 of the 16 batches.
    assert [step for step, _ in fids] == [0, 3, 7, 11, 15]
    assert all(np.isfinite(value) and value > 0 for _, value in fids)
    header = rows(dcgan_run)[0].keys()
    for name in ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall"):
        assert f"val/clf_{name}" in header  # the classifier's feature space: no Inception weights here
    config = OmegaConf.load(dcgan_run / "config.yaml")
    assert config.model.num_classes == 10 and config.data._target_.endswith("DigitsDataModule")
    assert (dcgan_run / "checkpoints" / "best.ckpt").is_file()
    best = torch.load(dcgan_run / "checkpoints" / "best.ckpt", weights_only=True)
    monitor = next(v for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert monitor["monitor"] == "val/clf_fid"
    assert monitor["best_model_score"].item() == pytest.approx(min(v for s, v in fids if s > 0), rel=1e-5)
    grid = Image.open(dcgan_run / "samples" / "step_000016.png")
    assert grid.size == (4 * 34 + 2, 4 * 34 + 2)  # four rows of four 32x32 samples, 2-pixel gaps


@pytest.mark.slow
def test_predict_writes_repeatable_samples_and_eval_reproduces_the_logged_metrics(dcgan_run, tmp_path, cache):
    ckpt = dcgan_run / "checkpoints" / "last.ckpt"
    for folder in ("a", "b"):
        result = run_script("predict.py", f"ckpt_path={ckpt}", "predict.num_samples=12", "predict.seed=5",
                            f"output={tmp_path / folder}")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "12 image(s) written" in result.stdout
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [f"sample_{i:05d}.png" for i in range(12)]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert Image.open(tmp_path / "a" / name).size == (32, 32)
    evaluated = run_script("eval.py", f"ckpt_path={ckpt}", f"paths.log_dir={tmp_path}",
                           f"metrics.cache_dir={cache}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    [report] = list(tmp_path.glob("eval/*/*/metrics.json"))
    metrics = json.loads(report.read_text())["metrics"]
    logged = {k: float(v) for k, v in rows(dcgan_run)[-1].items() if k.startswith("val/") and v}
    last = [r for r in rows(dcgan_run) if r.get("val/clf_fid")][-1]
    for key in ("val/clf_fid", "val/clf_kid_mean", "val/clf_is_mean", "val/clf_precision", "val/clf_recall"):
        assert metrics[key] == pytest.approx(float(last[key]), rel=1e-4, abs=1e-6), key
    assert logged  # the run logged its metrics
    export = run_cli("export", "--ckpt", str(ckpt), "--format", "torchscript", str(tmp_path / "g.pt"))
    assert export.returncode == 0, export.stderr[-3000:]
    assert '"z" (N, 128)' in export.stdout and "(N, 1, 32, 32)" in export.stdout
    generator = torch.jit.load(str(tmp_path / "g.pt"))
    assert generator(torch.randn(5, 128)).shape == (5, 1, 32, 32)


@pytest.mark.slow
def test_a_conditional_sngan_trains_and_samples_the_class_asked_for(tmp_path, cache):
    result = run_train(*[o for o in TINY_GENERATION if not o.startswith("model.")], "model=sngan_cond",
                       "model.generator.channels=16", "model.discriminator.channels=16", "model.n_critic=2",
                       f"callbacks.generation_metrics.cache_dir={cache}", log_dir=tmp_path / "logs")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path / "logs")
    assert len(validations(run)) == 5
    grid = Image.open(run / "samples" / "step_000016.png")
    assert grid.size == (4 * 34 + 2, 10 * 34 + 2)  # one row per digit class
    result = run_script("predict.py", f"ckpt_path={run}/checkpoints/last.ckpt", "predict.num_samples=3",
                        "predict.label=7", f"output={tmp_path / 'sevens'}")
    assert result.returncode == 0 and len(list((tmp_path / "sevens").iterdir())) == 3
    refused = run_script("predict.py", f"ckpt_path={run}/checkpoints/last.ckpt", "predict.num_samples=3",
                         "predict.label=10", f"output={tmp_path / 'none'}")
    assert refused.returncode == 2 and "predict.label=10 is not a class of this model: choose 0 .. 9" in refused.stderr
    assert not (tmp_path / "none").exists()


# DiffAugment and a lazy R1 (every 3rd D step): randomness and a schedule a resume must repeat.
RESUMABLE = [o for o in TINY_GENERATION if not o.startswith(("trainer.max_epochs", "callbacks.sample_grid"))] + [
    "trainer.max_epochs=3", "callbacks.last_checkpoint.every_n_batches=5", "callbacks.sample_grid.every_n_steps=0",
    "augment=diffaugment", "penalty=r1", "penalty.every_n_steps=3", "validate_before_training=false",
]


@pytest.mark.slow
def test_a_killed_run_with_diffaugment_and_lazy_r1_resumes_to_the_same_weights(tmp_path, cache):
    options = [*RESUMABLE, f"callbacks.generation_metrics.cache_dir={cache}"]
    whole = run_train(*options, log_dir=tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    [uninterrupted] = run_folders(tmp_path / "whole")
    assert any(r.get("train/loss_d_r1") for r in rows(uninterrupted))
    stopped, run = stop_part_way(*options, log_dir=tmp_path / "killed", how=signal.SIGKILL)
    assert stopped.returncode == -signal.SIGKILL
    resumed = run_train(f"ckpt_path={run}", log_dir=tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    [finished] = run_folders(tmp_path / "resumed")
    expected = torch.load(uninterrupted / "checkpoints" / "last.ckpt", weights_only=True)
    actual = torch.load(finished / "checkpoints" / "last.ckpt", weights_only=True)
    stopped_at = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0 < stopped_at < expected["global_step"] == actual["global_step"]
    for name, value in expected["state_dict"].items():
        assert torch.equal(value, actual["state_dict"][name]), f"{name} differs after the resume"


QUICK = [*TINY_GENERATION, "~callbacks.sample_grid", "~callbacks.last_checkpoint", "~callbacks.model_checkpoint",
         "trainer.enable_checkpointing=false", "trainer.max_epochs=1", "logger=csv"]


@pytest.mark.slow
def test_a_norm_by_loss_sweep_and_a_seed_sweep_end_in_a_heatmap_and_an_aggregated_report(tmp_path, cache):
    options = [*QUICK, f"callbacks.generation_metrics.cache_dir={cache}"]
    result = run_train("-m", "norm=batch,spectral", "gan_loss=vanilla,hinge", *options, log_dir=tmp_path / "grid")
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = list((tmp_path / "grid" / "multirun").glob("*/*"))
    report = run_cli("report", str(sweep), "--metric", "val/clf_fid")
    assert report.returncode == 0, report.stderr[-3000:]
    assert (sweep / "heatmap.png").is_file()
    document = json.loads((sweep / "report.json").read_text())
    assert document["grid"]["rows"] == "norm" and len(document["runs"]) == 4
    assert all(run["metrics"]["val/clf_fid"]["final"] > 0 for run in document["runs"])

    result = run_train("-m", "norm=batch,spectral", "seed=0,1", *options, log_dir=tmp_path / "seeds")
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = list((tmp_path / "seeds" / "multirun").glob("*/*"))
    report = run_cli("report", str(sweep), "--metric", "val/clf_fid", "--aggregate", "seed")
    assert report.returncode == 0, report.stderr[-3000:]
    document = json.loads((sweep / "report.json").read_text())
    finals = {}
    for run in run_folders(tmp_path / "seeds"):
        finals.setdefault(OmegaConf.load(run / "config.yaml").norm.kind, []).append(validations(run)[-1][1])
    cells = {cell["params"]["norm"]: cell for cell in document["cells"]}
    for norm, values in finals.items():
        final = cells[norm]["metrics"]["val/clf_fid"]["final"]
        assert final["n"] == 2
        assert final["mean"] == pytest.approx(np.mean(values), rel=1e-9)
        assert final["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)


@pytest.mark.slow
def test_data_parallel_generation_metrics_are_those_of_one_process(tmp_path, cache):
    """trainer=ddp_cpu: each of 2 processes samples its share of the reference set, the
    feature sets are gathered, and the numbers logged are those eval.py computes in one
    process from the same checkpoint (the classifier cached once, by the first process)."""
    options = [o for o in TINY_GENERATION if not o.startswith("trainer.max_epochs")]
    result = run_train(*options, "trainer.max_epochs=1", "trainer=ddp_cpu", f"callbacks.generation_metrics.cache_dir={cache}",
                       log_dir=tmp_path / "logs")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_folders(tmp_path / "logs")
    last = [r for r in rows(run) if r.get("val/clf_fid")][-1]
    evaluated = run_script("eval.py", f"ckpt_path={run}/checkpoints/last.ckpt", f"paths.log_dir={tmp_path}",
                           f"metrics.cache_dir={cache}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    [report] = list(tmp_path.glob("eval/*/*/metrics.json"))
    metrics = json.loads(report.read_text())["metrics"]
    for key in ("val/clf_fid", "val/clf_kid_mean", "val/clf_precision", "val/clf_recall"):
        assert metrics[key] == pytest.approx(float(last[key]), rel=1e-4, abs=1e-6), key
