"""The table of a user's mistakes, across train.py, eval.py, predict.py and the compress CLI.

For each: a non-zero exit, a short message that names the problem, no traceback (unless
HYDRA_FULL_ERROR=1), and every file that existed before (checkpoints, outputs, images)
byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ganforge.data import sample_photo
from tests.cli.helpers import REPO
from tests.conftest import write_image

COMPRESSION_TINY = [
    "model=compression", "model.bottleneck=4", "model.generator.width=0.05", "model.generator.residual_blocks=1",
    "model.discriminator.scales=2", "model.discriminator.ndf=4", "model.discriminator.n_layers=2",
    "data.crop_size=48", "data.scale=0.25", "data.samples_per_epoch=4", "data.batch_size=2",
    "trainer.max_epochs=1", "~callbacks.model_summary",
]

GROUP_TYPO = ("error: norm=spectal is not an option; choose one of batch, instance, layer, none, paper, pixel, spectral, "
              "weight (did you mean spectral?)")

# (command, arguments, words the message must contain). {name} is a path from `world`.
CASES = [
    # train.py: config groups and keys (checked before Hydra runs)
    ("train", ["norm=spectal"], GROUP_TYPO),
    ("train", ["-m", "norm=batch,spectal"], GROUP_TYPO),
    # a wrong value later in a sweep, or in the config another group value of the sweep makes
    ("train", ["-m", "norm=batch,spectral", "trainer.max_epochs=1,abc"], "error: trainer.max_epochs must be an integer"),
    ("train", ["-m", "model=dcgan,sngan", "model.generator.base_channels=8"],
     "error: model.generator.base_channels is not in the config (did you mean model.generator.channels?)"),
    ("train", ["hydra/launcher=slurn"], "error: hydra/launcher=slurn is not an option; choose one of basic, joblib, "
                                        "slurm, submitit_local, submitit_slurm (did you mean slurm?)"),
    ("train", ["model=pix2pixx"], "error: model=pix2pixx is not an option; choose one of compression, dcgan, "
                                  "dcgan_cond, pix2pix, pix2pix_small, sngan, sngan_cond (did you mean pix2pix?)"),
    ("train", ["debug=fdrr"], "error: debug=fdrr is not an option; choose one of fdr, limit, overfit, profiler "
                              "(did you mean fdr?)"),
    ("train", ["model.lambda_ll=1"], "error: model.lambda_ll is not in the config (did you mean model.lambda_l1?)"),
    ("train", ["model.generatr.ngf=8"], "error: model.generatr is not in the config (did you mean model.generator?)"),
    ("train", ["~callbacks.model_sumary"],
     "error: callbacks.model_sumary is not in the config (did you mean callbacks.model_summary?)"),
    ("train", ["+trainer.max_epochs=3"], "error: trainer.max_epochs is in the config already: set it without the +"),
    ("train", ["trainer.benchmark=true"], "error: trainer.benchmark is not set in the config, but Lightning's Trainer "
                                          "takes it: add it with +trainer.benchmark=true"),
    ("train", ["norm=["], "error: cannot parse norm=["),
    # train.py: the trainer node, against Lightning's Trainer
    ("train", ["trainer.max_epochs=abc"], "error: trainer.max_epochs must be an integer >= -1 or null (Lightning's "
                                          "Trainer(max_epochs: int | None)), got 'abc'"),
    ("train", ["trainer.max_epochs=1.5"], "error: trainer.max_epochs must be an integer >= -1"),
    ("train", ["trainer.max_steps=-2"], "error: trainer.max_steps must be an integer >= -1"),
    ("train", ["trainer.log_every_n_steps=-1"], "error: trainer.log_every_n_steps must be an integer >= 0"),
    ("train", ["trainer.max_epoch=3"], "error: trainer.max_epoch is not in the config (did you mean trainer.max_epochs?)"),
    ("train", ["+trainer.max_epoch=3"],
     "error: trainer.max_epoch is not a parameter of Lightning's Trainer (did you mean trainer.max_epochs?)"),
    ("train", ["trainer.precision=16-mix"], "got '16-mix' (did you mean 16-mixed?)"),
    ("train", ["trainer.accelerator=gpux"], "error: trainer.accelerator must be one of auto, cpu, gpu"),
    ("train", ["trainer.devices=0"], "error: trainer.devices must be an integer >= 1, -1 (every device), auto"),
    ("train", ["trainer.limit_val_batches=1.5"], "error: trainer.limit_val_batches must be an integer >= 0 (batches) "
                                                 "or a number in [0, 1] (a fraction)"),
    ("train", ["trainer.limit_train_batches=-1"], "error: trainer.limit_train_batches must be an integer >= 0"),
    ("train", ["trainer.check_val_every_n_epoch=0"], "error: trainer.check_val_every_n_epoch must be an integer >= 1"),
    ("train", ["trainer.num_sanity_val_steps=-2"], "error: trainer.num_sanity_val_steps must be an integer >= -1"),
    ("train", ["trainer.fast_dev_run=-1"], "error: trainer.fast_dev_run must be true, false or an integer >= 0"),
    ("train", ["trainer.profiler=simpl"], "(did you mean simple?)"),
    ("train", ["trainer.deterministic=sometimes"], "error: trainer.deterministic must be one of true, false, warn or null"),
    ("train", ["+trainer.gradient_clip_val=1"], "error: trainer.gradient_clip_val must be null (Lightning cannot clip "
                                                "in ganforge's D/G loop: use model.grad_clip.value)"),
    ("train", ["+trainer.accumulate_grad_batches=4"], "error: trainer.accumulate_grad_batches must be 1"),
    ("train", ["+trainer.max_time=1h"], "error: trainer.max_time must be a time DD:HH:MM:SS"),
    ("train", ["trainer=ddp_cpu", "+trainer.strategy.separate_network=false"], "error: trainer.strategy.separate_network "
     "is not a parameter of ganforge's GANDDPStrategy (did you mean trainer.strategy.separate_networks?)"),
    ("train", ["trainer=ddp_cpu", "trainer.strategy.separate_networks=3"],
     "error: trainer.strategy.separate_networks must be true or false"),
    ("train", ["trainer.plugins=[{{_target_: ganforge.checkpoint.AtomicCheckpointI0}}]"],
     "error: trainer.plugins[0]._target_=ganforge.checkpoint.AtomicCheckpointI0 cannot be imported: ganforge.checkpoint "
     "has no AtomicCheckpointI0 (did you mean ganforge.checkpoint.AtomicCheckpointIO?)"),
    # train.py: loggers
    ("train", ["logger=default", "logger.wandb.offline=maybe"],
     "error: logger.wandb.offline must be true or false (ganforge's WandbLogger(offline: bool)), got 'maybe'"),
    ("train", ["logger=default", "+logger.wandb.entty=me"],
     "error: logger.wandb.entty is not a parameter of ganforge's WandbLogger (did you mean logger.wandb.entity?)"),
    ("train", ["logger=default", "logger.wandb.settings.quiet=maybe"],
     "error: logger.wandb.settings.quiet must be true or false"),
    ("train", ["logger.csv.name=3"], "error: logger.csv.name must be a string or null"),
    ("train", ["+logger.csv.flush_logs_every_n_steps=0"], "error: logger.csv.flush_logs_every_n_steps must be an integer >= 1"),
    ("train", ["logger=tensorboard", "+logger.tensorboard.log_graph=sometimes"],
     "error: logger.tensorboard.log_graph must be true or false"),
    # train.py: callbacks
    ("train", ["callbacks.model_checkpoint.mode=maximum"], "error: callbacks.model_checkpoint.mode must be one of min, "
     "max (Lightning's ModelCheckpoint(mode: str)), got 'maximum' (did you mean max?)"),
    ("train", ["callbacks.model_checkpoint.save_top_k=-2"],
     "error: callbacks.model_checkpoint.save_top_k must be an integer >= -1"),
    ("train", ["+callbacks.model_checkpoint.monitr=val/l1"],
     "error: callbacks.model_checkpoint.monitr is not a parameter of Lightning's ModelCheckpoint (did you mean "
     "callbacks.model_checkpoint.monitor?)"),
    ("train", ["+callbacks.model_checkpoint.every_n_epochs=-1"],
     "error: callbacks.model_checkpoint.every_n_epochs must be an integer >= 0"),
    ("train", ["callbacks.sample_grid.num_images=0"], "error: callbacks.sample_grid.num_images must be an integer >= 1"),
    ("train", ["callbacks.last_checkpoint.every_n_batches=often"],
     "error: callbacks.last_checkpoint.every_n_batches must be an integer >= 0"),
    ("train", ["callbacks.model_summary.max_depth=deep"], "error: callbacks.model_summary.max_depth must be an integer"),
    ("train", ["+callbacks.progress_bar.refresh_rate=-1"], "error: callbacks.progress_bar.refresh_rate must be an integer >= 0"),
    # train.py: the data node and the model
    ("train", ["+data.crop=64"],
     "error: data.crop is not a parameter of ganforge's SampleDataModule (did you mean data.crop_size?)"),
    ("train", ["data.scale=half"], "error: data.scale must be a number (ganforge's SampleDataModule(scale: float)), got 'half'"),
    ("train", ["+model.lambda_ll=1"], "error: model.lambda_ll is not a parameter of ganforge's Pix2PixTask (did you mean "
                                      "model.lambda_l1?)"),
    ("train", ["model.lambda_l1=abc"], "error: model.lambda_l1 must be a number >= 0, got 'abc'"),
    ("train", ["model.optim.lr_g=-0.1"], "error: model.optim.lr_g must be a number > 0"),
    ("train", ["data.batch_size=0"], "error: data.batch_size must be an integer >= 1"),
    ("train", ["norm.n_power_iterations=two"], "error: norm.n_power_iterations must be an integer >= 1"),
    ("train", ["trainer_guard.on_nonfinite=ignore"], "error: trainer_guard.on_nonfinite must be one of"),
    ("train", ["trainer.accelerator=cpu", "trainer.devices=2"],
     "error: trainer.devices=2 x trainer.num_nodes=1 runs 2 processes"),
    ("train", ["trainer=ddp"], "error: trainer.accelerator=gpu but this torch"),
    # train.py: the sizes the networks take
    ("train", ["data.crop_size=48"], "error: data.crop_size=48 does not fit the model: its UNetGenerator "
     "(model.generator.num_downs=6: 2**6) needs image sides that are multiples of 64: use data.crop_size=64"),
    ("train", ["model=pix2pix", "data.crop_size=64"], "error: data.crop_size=64 does not fit the model: its UNetGenerator "
     "(model.generator.num_downs=8: 2**8) needs image sides that are multiples of 256: use data.crop_size=256"),
    ("train", [*COMPRESSION_TINY, "quantizer.centers=[0,0,1]"], "error: quantizer.centers has duplicates [0.0]"),
    ("train", [*COMPRESSION_TINY, "quantizer.centers=[1]"], "error: quantizer.centers needs at least 2 centers"),
    ("train", [*COMPRESSION_TINY, "quantizer.temperature=0"], "error: quantizer.temperature must be a number > 0"),
    ("train", [*COMPRESSION_TINY, "data.crop_size=56"],
     "error: data.crop_size=56 does not fit the model: its GenerativeCompression needs image sides that are multiples of 16"),
    ("train", ["model=compression", "data.crop_size=48"], "error: data.crop_size=48 is too small for the model: its "
                                                          "MultiScaleDiscriminator needs image sides of at least 96"),
    # train.py: the data
    ("train", ["data.crop_size=512"], "smaller than data.crop_size=512"),
    ("train", ["data=paired"], "error: data.root is not set"),
    ("train", ["data=paired", "data.root={tmp}/no/such/folder"], "is not a folder"),
    ("train", ["data=folder", "data.root={empty}"], "holds 0 image(s)"),
    ("train", ["data=folder", "data.root={corrupt_folder}", "data.crop_size=32", "model.generator.num_downs=5"],
     "cannot read image"),
    ("train", ["data=folder", "data.root={truncated_folder}", "data.crop_size=32", "model.generator.num_downs=5"],
     "cannot read image"),
    # train.py: checkpoints and outputs
    ("train", ["ckpt_path={tmp}/no/such.ckpt"], "error: ckpt_path={tmp}/no/such.ckpt does not exist"),
    ("train", ["ckpt_path={truncated_ckpt}"], "cannot read checkpoint"),
    ("train", ["ckpt_path={compression}"], "is a compression checkpoint, but this run trains pix2pix"),
    ("train", ["ckpt_path={pix2pix}", "model.generator.ngf=8"], "holds another network than this config builds"),
    ("train", ["ckpt_path={empty}"], "is a folder without checkpoints/last.ckpt"),
    ("train", ["paths.log_dir={a_file}/runs"], "cannot write to paths.log_dir"),
    # eval.py
    ("eval", ["ckpt_path={pix2pix}", "data=sampel"], "error: data=sampel is not an option; choose one of "
                                                     "class_folder, digits, folder, paired, sample (did you mean sample?)"),
    ("eval", ["ckpt_path={pix2pix}", "metrics.fid.weight=x"],
     "error: metrics.fid.weight is not in the config (did you mean metrics.fid.weights?)"),
    ("eval", ["ckpt_path={pix2pix}", "trainer.precision=32-ture"], "(did you mean 32-true?)"),
    ("eval", ["data=sample"], "error: ckpt_path is missing"),
    ("eval", ["ckpt_path={tmp}/none.ckpt", "data=sample"], "checkpoint not found"),
    ("eval", ["ckpt_path={truncated_ckpt}", "data=sample"], "cannot read checkpoint"),
    ("eval", ["ckpt_path={pix2pix}"], "no config.yaml beside"),
    ("eval", ["ckpt_path={pix2pix}", "data=sample", "metrics.fid.weights={a_file}"], "Inception weights"),
    ("eval", ["ckpt_path={pix2pix}", "data=sample", "data.batch_size=-1"], "data.batch_size must be an integer >= 1"),
    # predict.py
    ("predict", ["ckpt_path={pix2pix}", "input={photo}", "output={tmp}/out", "hydra/job_logging=disabeld"],
     "error: hydra/job_logging=disabeld is not an option; choose one of default, disabled, none, stdout (did you mean "
     "disabled?)"),
    ("predict", ["ckpt_path={pix2pix}", "input={photo}", "output={tmp}/out", "predict.devise=cpu"],
     "error: predict.devise is not in the config (did you mean predict.device?)"),
    ("predict", ["ckpt_path={pix2pix}", "input={empty}", "output={tmp}/out"], "no images"),
    ("predict", ["ckpt_path={pix2pix}", "input={corrupt_folder}/sub/broken.jpg", "output={tmp}/out"],
     "cannot read image"),
    ("predict", ["ckpt_path={pix2pix}", "input={photo}", "output={a_file}"], "is a file"),
    ("predict", ["ckpt_path={pix2pix}", "input={photo}", "output={a_file}/out"], "cannot write to output"),
    ("predict", ["ckpt_path={tmp}/none.ckpt", "input={photo}", "output={tmp}/out"], "checkpoint not found"),
    ("predict", ["ckpt_path={pix2pix}", "input={photo}", "output={tmp}/out", "predict.device=tpu9"],
     "predict.device"),
    # the compress CLI
    ("compress", ["--ckpt", "{pix2pix}", "{photo}", "{tmp}/photo.gfc"], "is a pix2pix checkpoint"),
    ("compress", ["--ckpt", "{truncated_ckpt}", "{photo}", "{tmp}/photo.gfc"], "cannot read checkpoint"),
    ("compress", ["--ckpt", "{compression}", "{photo}", "{a_file}/photo.gfc"], "cannot write"),
    ("decompress", ["--ckpt", "{compression}", "{photo}", "{tmp}/out.png"], "is not a ganforge compressed file"),
    # image generation from noise
    ("train", ["model=dcgan_cond", "data=sample"], "error: model.conditional=true needs data with class labels"),
    ("train", ["model=dcgan", "data=class_folder", "data.root={one_class}"], "has 1 class folder (cats): a class folder "
     "needs at least 2 classes"),
    ("train", ["model=pix2pix_small", "data=digits"], "error: the data's images are grey (data.channels=1), but this "
     "model takes 3-channel images"),
    ("train", ["model=dcgan", "model.image_size=64"], "error: data.image_size=32 but the model makes 64x64 images"),
    ("predict", ["ckpt_path={generation}", "predict.num_samples=0", "output={tmp}/out"],
     "error: predict.num_samples must be an integer >= 1, got 0"),
    ("predict", ["ckpt_path={generation}", "predict.num_samples=-3", "output={tmp}/out"],
     "error: predict.num_samples must be an integer >= 1, got -3"),
    ("predict", ["ckpt_path={generation}", "predict.num_samples=2", "predict.label=12", "output={tmp}/out"],
     "error: predict.label=12 is not a class of this model: choose 0 .. 9"),
    ("predict", ["ckpt_path={generation}", "output={tmp}/out"], "error: predict.num_samples is missing"),
    ("predict", ["ckpt_path={generation}", "input={photo}", "predict.num_samples=2", "output={tmp}/out"],
     "takes no input"),
    ("predict", ["ckpt_path={pix2pix}", "input={photo}", "predict.num_samples=2", "output={tmp}/out"],
     "predict.num_samples and predict.label are for models that generate from noise"),
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def world(tmp_path: Path, pix2pix_checkpoint: Path, compression_checkpoint: Path,
          generation_checkpoint: Path) -> dict[str, Path]:
    """The files the cases point at; all of them must survive every case unchanged."""
    (tmp_path / "empty").mkdir()
    corrupt = tmp_path / "corrupt"
    write_image(corrupt / "good.png", (80, 60))
    write_image(corrupt / "sub" / "broken.jpg", (80, 60))
    (corrupt / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG after all")
    truncated = tmp_path / "truncated_images"
    write_image(truncated / "a.png", (80, 60))
    whole = (truncated / "a.png").read_bytes()
    write_image(truncated / "b.png", (80, 60), seed=1)
    (truncated / "b.png").write_bytes((truncated / "b.png").read_bytes()[: len(whole) // 2])
    truncated_ckpt = tmp_path / "truncated.ckpt"
    truncated_ckpt.write_bytes(pix2pix_checkpoint.read_bytes()[:4000])
    a_file = tmp_path / "existing.png"
    Image.fromarray(sample_photo("chelsea")[::8, ::8]).save(a_file)
    one_class = tmp_path / "one_class"
    write_image(one_class / "cats" / "a.png", (32, 32))
    photo = tmp_path / "photo.png"
    Image.fromarray(sample_photo("coffee")[::8, ::8]).save(photo)
    return {"tmp": tmp_path, "empty": tmp_path / "empty", "corrupt_folder": corrupt, "truncated_folder": truncated,
            "truncated_ckpt": truncated_ckpt, "a_file": a_file, "photo": photo, "pix2pix": pix2pix_checkpoint,
            "compression": compression_checkpoint, "generation": generation_checkpoint, "one_class": one_class}


ENTRY_POINTS = {
    "train": ("ganforge.cli.train", "main", "train.py"),
    "eval": ("ganforge.cli.evaluate", "main", "eval.py"),
    "predict": ("ganforge.cli.predict", "main", "predict.py"),
    "compress": ("ganforge.cli.compress", "main_compress", "ganforge compress"),
    "decompress": ("ganforge.cli.compress", "main_decompress", "ganforge decompress"),
}


def _argv(command: str, args: list[str], world: dict[str, Path]) -> list[str]:
    args = [a.format(**world) for a in args]
    flags = [a for a in args if a.startswith("-") and not a.startswith("--ckpt")] if command in ENTRY_POINTS else []
    if command in ("compress", "decompress"):
        flags = []
    args = [a for a in args if a not in flags]
    if command in ("train", "eval") and not any(a.startswith("paths.log_dir") for a in args):
        args = [f"paths.log_dir={world['tmp']}/logs", *args]
    return [*flags, *(["logger=csv"] if command == "train" else []), *args]


def _run(command: str, args: list[str], world: dict[str, Path], capsys, monkeypatch) -> tuple[int, str, str]:
    """The command's main() in this process, as its console script calls it (a
    subprocess per case would spend most of its time importing torch and Lightning):
    returns (exit status, stdout, stderr)."""
    import importlib

    module_name, function, program = ENTRY_POINTS[command]
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", [program, *_argv(command, args, world)])
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # trainer=ddp's case, on a GPU machine too
    capsys.readouterr()
    code = 0
    # Hydra configures logging in this process (predict's job logging disables every
    # existing logger): put it back afterwards, for the tests that run here next.
    import logging

    loggers = {name: (log.disabled, log.level, log.propagate, list(log.handlers))
               for name, log in logging.root.manager.loggerDict.items() if isinstance(log, logging.Logger)}
    root = (logging.root.level, list(logging.root.handlers))
    try:
        getattr(importlib.import_module(module_name), function)()
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    finally:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()
        for name, (disabled, level, propagate, handlers) in loggers.items():
            log = logging.getLogger(name)
            log.disabled, log.level, log.propagate, log.handlers = disabled, level, propagate, handlers
        logging.root.level, logging.root.handlers = root
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command, args, words", CASES, ids=[f"{c} {' '.join(a[-2:])}" for c, a, _ in CASES])
def test_a_mistake_ends_in_a_short_message_and_damages_nothing(command, args, words, world, capsys, monkeypatch):
    before = {p: _digest(p) for root in (world["tmp"], world["pix2pix"].parent, world["compression"].parent)
              for p in root.rglob("*") if p.is_file()}
    code, out, err = _run(command, args, world, capsys, monkeypatch)
    assert code != 0, out[-2000:]
    message = err.strip()
    assert "Traceback" not in message + out, message[-3000:]
    ours = [line for line in message.splitlines() if line.startswith("error: ")]
    if ours:  # ganforge's own: one line naming the problem and the fix
        assert len(ours) == 1 and words.format(**world) in ours[0], message[-2000:]
    else:  # Hydra's, for a mistake Hydra finds itself: the problem first
        lines = message.splitlines()
        assert words in "\n".join(lines[:3]) and len(lines) <= 20, message[-2000:]
    found_early = (command == "train" and "cannot read image" not in words) or "not an option" in words or \
        "not in the config" in words  # (a truncated image is found when training first reads it)
    if found_early:  # before anything ran: the line is all there is, and Hydra made no run folder
        assert message == ours[0] and not out.strip(), message[-2000:] + out[-2000:]
        assert not list(world["tmp"].glob("logs/**/.hydra")), "a run folder was made"
    if command == "eval":  # a mistake found after Hydra made the eval folder takes the folder back
        assert not list(world["tmp"].glob("logs/eval/*/*")), list(world["tmp"].glob("logs/eval/*/*"))
    for path, digest in before.items():
        assert path.is_file() and _digest(path) == digest, f"{path} was changed"


def test_an_eval_folder_chosen_by_hand_is_kept_after_a_mistake(world, capsys, monkeypatch):
    # An earlier eval's folder, passed again: Hydra appends to its log, so only the hand-chosen
    # folder (not the files' times) says that it is not this run's to take back.
    folder = world["tmp"] / "my_eval"
    folder.mkdir()
    (folder / "evaluate.log").write_text("an earlier evaluation\n")
    code, _, err = _run("eval", ["ckpt_path={truncated_ckpt}", "data=sample", f"hydra.run.dir={folder}"], world,
                        capsys, monkeypatch)
    assert code != 0 and "cannot read checkpoint" in err
    assert (folder / "evaluate.log").read_text().startswith("an earlier evaluation\n")


def test_the_table_covers_every_command_and_enough_mistakes():
    assert len(CASES) >= 20
    assert {command for command, _, _ in CASES} >= {"train", "eval", "predict", "compress"}
    nodes = [a[-1].lstrip("+~").split(".")[0] for c, a, w in CASES if c == "train" and "must be" in w or "parameter of" in w]
    assert sum(node in ("trainer", "logger", "callbacks") for node in nodes) >= 15
    typos = {c for c, a, w in CASES if "is not an option" in w}
    assert typos >= {"train", "eval", "predict"}


def _case(words: str) -> tuple:
    return next(case for case in CASES if words in case[2])


@pytest.mark.parametrize("command, args, words", [CASES[0], _case("trainer.max_epochs must be an integer >= -1 or null"),
                                                  _case("is a pix2pix checkpoint")], ids=["group", "schema", "compress"])
def test_the_real_command_line_reports_the_same(command, args, words, world):
    """A few cases through a real process: the exit status and stderr a shell sees."""
    module_name, function, program = ENTRY_POINTS[command]
    argv = [str(REPO / program)] if program.endswith(".py") else ["-m", "ganforge.cli", command]
    environment = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    result = subprocess.run([sys.executable, *argv, *_argv(command, args, world)], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and words.format(**world) in result.stderr
    assert "Traceback" not in result.stderr
    full = subprocess.run([sys.executable, *argv, *_argv(command, args, world)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**environment, "HYDRA_FULL_ERROR": "1"})
    if command == "train":  # HYDRA_FULL_ERROR=1 shows where the error came from
        assert full.returncode != 0 and "Traceback" in full.stderr
