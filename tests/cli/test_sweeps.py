"""Sweeps beyond Hydra's basic launcher: joblib and submitit launchers, the SLURM preset,
and the Optuna searches in conf/hparams_search/.

The launchers and the search run for real on tiny models; SLURM itself is not here, so
its preset is checked up to the sbatch script that submitit would submit.
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ganforge.cli import CONFIG_DIR
from ganforge.cli.train import optimized_value
from tests.cli.helpers import TINY, run_folders, run_train

# No samples, no checkpoints: a launcher test only needs the runs' metrics.
QUICK = [*TINY, "~callbacks.sample_grid", "~callbacks.model_checkpoint", "~callbacks.last_checkpoint",
         "trainer.enable_checkpointing=false", "validate_before_training=false"]


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def final_psnr(run: Path) -> float:
    with open(run / "metrics.csv", newline="") as handle:
        return [float(r["val/psnr"]) for r in csv.DictReader(handle) if r.get("val/psnr")][-1]


def check_two_runs(tmp_path: Path) -> list[Path]:
    runs = run_folders(tmp_path)
    assert len(runs) == 2, runs
    assert {OmegaConf.load(r / "config.yaml").norm.kind for r in runs} == {"instance", "pixel"}
    assert all(final_psnr(r) > 0 for r in runs)
    return runs


@pytest.mark.slow
def test_the_joblib_launcher_trains_the_runs_in_parallel_processes(tmp_path):
    result = run_train("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "norm=instance,pixel", *QUICK,
                       log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    check_two_runs(tmp_path)


@pytest.mark.slow
def test_the_submitit_local_launcher_trains_each_run_as_a_job(tmp_path):
    result = run_train("-m", "hydra/launcher=submitit_local", "norm=instance,pixel", *QUICK, log_dir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = check_two_runs(tmp_path)
    logs = list(runs[0].parent.glob(".submitit/*/*_log.err"))
    assert len(logs) == 2  # one job each, with its own log


def test_the_slurm_preset_submits_what_lightning_needs(tmp_path, monkeypatch):
    """tasks_per_node and gpus_per_node follow trainer.devices, nodes trainer.num_nodes; the
    launcher turns them into the sbatch lines that Lightning's SLURM support expects."""
    import hydra
    import submitit

    config = compose_train(["hydra/launcher=slurm"])
    launcher = OmegaConf.to_container(config.hydra.launcher, resolve=True)
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (1, 1, 1)
    assert (launcher["timeout_min"], launcher["cpus_per_task"], launcher["mem_gb"]) == (1440, 8, 32)
    assert launcher["partition"] is None and launcher["max_num_timeout"] == 0

    config = compose_train(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                            "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=90",
                            f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    # submitit needs srun on the PATH to build a SLURM executor; it is never called here.
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_folder / "srun").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_folder}{os.pathsep}{os.environ['PATH']}")
    scripts = []

    def capture(executor, function, *arguments):
        scripts.append(executor._executor._make_submission_file_text("python train.py", "uid"))
        raise RuntimeError("captured")

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    slurm = hydra.utils.instantiate(config.hydra.launcher)
    slurm.setup(hydra_context=None, task_function=None, config=config)
    with pytest.raises(RuntimeError, match="captured"):
        slurm.launch([["norm=batch"], ["norm=pixel"]], initial_job_idx=0)
    [script] = scripts
    strategy = config.trainer.strategy
    assert strategy._target_ == "ganforge.distributed.GANDDPStrategy" and strategy.separate_networks
    assert config.trainer.sync_batchnorm and config.trainer.accelerator == "gpu"
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=90",
                 "--cpus-per-task=8", "--mem=32GB", "--signal=USR2@120"):
        assert f"#SBATCH {line}\n" in script, (line, script)
    assert "srun --unbuffered" in script


def test_the_optuna_searches_compose(tmp_path):
    for name, model, weight in (("pix2pix_optuna", "Pix2PixTask", "model.lambda_l1"),
                                ("compression_optuna", "CompressionTask", "model.lambda_mse")):
        config = compose_train([f"hparams_search={name}"])
        sweeper = config.hydra.sweeper
        assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
        assert sweeper.direction == "maximize" and config.optimized_metric == "val/psnr"
        assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == 0
        assert set(sweeper.params) == {"model.optim.lr_g", "model.optim.lr_d", "norm", "act", "model.n_critic", weight}
        assert sweeper.params["model.optim.lr_g"].startswith("tag(log, interval(")
        assert str(config.hydra.mode) == "RunMode.MULTIRUN"
        assert config.model._target_ == f"ganforge.tasks.{model}"
        for choice in ("norm", "act"):  # every option the search may pick exists
            options = sweeper.params[choice].removeprefix("choice(").removesuffix(")").split(", ")
            assert all((CONFIG_DIR / choice / f"{o}.yaml").is_file() for o in options), options


def test_the_generation_search_minimizes_the_fid_of_the_feature_space_in_use():
    config = compose_train(["hparams_search=generation_optuna"])
    sweeper = config.hydra.sweeper
    assert sweeper.direction == "minimize" and config.model._target_ == "ganforge.tasks.GenerationTask"
    assert config.optimized_metric == "val/fid"
    for choice in ("norm", "gan_loss", "penalty"):
        options = sweeper.params[choice].removeprefix("choice(").removesuffix(")").split(", ")
        assert all((CONFIG_DIR / choice / f"{o}.yaml").is_file() for o in options), options
    assert compose_train(["hparams_search=generation_optuna", "model=sngan"]).model.architecture == "resnet"
    # Without the Inception weights the run logs val/clf_fid, and that is what the sweeper gets.
    assert optimized_value({"val/clf_fid": 3.5, "val/fid_unused": 1.0}, "val/fid") == 3.5
    assert optimized_value({"val/fid": 2.0, "val/clf_fid": 3.5}, "val/fid") == 2.0
    assert optimized_value({"val/psnr": 20.0}, "val/fid") is None and optimized_value({"val/psnr": 20.0}, None) is None


@pytest.mark.slow
def test_an_optuna_search_runs_its_trials_and_keeps_the_study_in_sqlite(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    result = run_train("hparams_search=pix2pix_optuna", "hydra.sweeper.n_trials=3", f"hydra.sweeper.storage={storage}",
                       *QUICK, log_dir=tmp_path)  # hydra.mode makes it a multirun: no -m
    assert result.returncode == 0, result.stderr[-3000:]
    runs = run_folders(tmp_path)
    assert len(runs) == 3
    [results] = tmp_path.glob("multirun/*/*/optimization_results.yaml")
    best = yaml.safe_load(results.read_text())
    assert best["best_value"] == pytest.approx(max(final_psnr(r) for r in runs), rel=1e-6)
    assert set(best["best_params"]) == {"model.optim.lr_g", "model.optim.lr_d", "norm", "act", "model.n_critic",
                                        "model.lambda_l1"}
    assert 2e-5 <= best["best_params"]["model.optim.lr_g"] <= 2e-3
    for run in runs:  # each trial trained with the values Optuna chose for it
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()))
        config = OmegaConf.load(run / "config.yaml")
        assert config.model.optim.lr_g == pytest.approx(float(overrides["model.optim.lr_g"]))
        assert config.norm.kind == overrides["norm"]
    study = optuna.load_study(study_name="pix2pix", storage=storage)
    assert len(study.trials) == 3 and study.best_value == pytest.approx(best["best_value"])
