"""What a W&B run of train.py holds, read back from the offline run's own files."""

from __future__ import annotations

import csv
import math
import struct
import zlib
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from omegaconf import OmegaConf
from PIL import Image as PILImage
from wandb.proto import wandb_internal_pb2 as pb

from ganforge.cli import CONFIG_DIR
from ganforge.cli.errors import find_user_error
from ganforge.errors import ConfigError
from ganforge.tracking import override_tags, sweep_group
from tests.cli.helpers import TINY, run_folders, run_train
from tests.wandb_reader import BLOCK, CorruptRunFile, offline_run, records


def wandb_env(tmp_path: Path) -> dict[str, str]:
    """Keep wandb's staging, cache and settings folders inside the test's tmp_path."""
    return {name: str(tmp_path / "wandb-home" / name.lower())
            for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR")}


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["paths.output_dir=/tmp/unused", *overrides])


# ---- the reader ---------------------------------------------------------------------


def datastore(payloads: list[bytes]) -> bytes:
    """The framing wandb writes (its datastore.py): file header, then chunks that never
    cross a 32 KiB block, a block's last < 7 bytes zero-filled."""
    out = bytearray(struct.pack("<4sHB", b":W&B", 0xBEE1, 0))

    def chunk(kind: int, data: bytes) -> None:
        out.extend(struct.pack("<IHB", zlib.crc32(data, zlib.crc32(bytes([kind]))), len(data), kind))
        out.extend(data)

    for data in payloads:
        if BLOCK - len(out) % BLOCK < 7:
            out.extend(bytes(BLOCK - len(out) % BLOCK))
        room = BLOCK - len(out) % BLOCK - 7
        if len(data) <= room:
            chunk(1, data)
            continue
        chunk(2, data[:room])
        data = data[room:]
        while len(data) > BLOCK - 7:
            chunk(3, data[: BLOCK - 7])
            data = data[BLOCK - 7 :]
        chunk(4, data)
    return bytes(out)


def test_reader_joins_records_split_across_blocks_and_skips_block_trailers(tmp_path):
    def history(i: int) -> pb.Record:
        return pb.Record(history=pb.HistoryRecord(item=[pb.HistoryItem(nested_key=["val/psnr"], value_json=str(i))]))

    big = pb.Record(config=pb.ConfigRecord(update=[pb.ConfigItem(key="blob", value_json='"' + "a" * 80_000 + '"')]))
    sent = [history(0), big, history(1)]
    # A record that leaves 3 bytes in its block: too few for a chunk header, so zeros.
    left = BLOCK - len(datastore([r.SerializeToString() for r in sent])) % BLOCK
    assert left > 100
    fillers = (pb.Record(output_raw=pb.OutputRawRecord(line="." * n)) for n in range(left - 30, left))
    [filler] = [r for r in fillers if r.ByteSize() == left - 7 - 3]
    sent += [filler, history(2)]
    data = datastore([r.SerializeToString() for r in sent])
    assert len(data) > 3 * BLOCK and len(data) % BLOCK > 0
    path = tmp_path / "run-test.wandb"
    path.write_bytes(data)
    assert list(records(path)) == sent

    path.write_bytes(data[: BLOCK + 100] + bytes([data[BLOCK + 100] ^ 1]) + data[BLOCK + 101 :])
    with pytest.raises(CorruptRunFile, match="checksum"):
        list(records(path))
    path.write_bytes(b"not a wandb file")
    with pytest.raises(CorruptRunFile, match="not a W&B datastore"):
        list(records(path))


# ---- the config -----------------------------------------------------------------------


@pytest.mark.parametrize("logger", ["wandb", "default"])
def test_the_best_checkpoint_goes_up_online_and_nothing_is_uploaded_offline(logger):
    offline = composed(f"logger={logger}").logger.wandb
    assert offline._target_ == "ganforge.tracking.WandbLogger"
    assert offline.offline is True and offline.log_model is None
    # Building the logger starts no W&B run: that waits for the first thing logged.
    assert hydra.utils.instantiate(offline)._log_model is False
    online = composed(f"logger={logger}", "logger.wandb.offline=false").logger.wandb
    assert hydra.utils.instantiate(online)._log_model is True
    assert hydra.utils.instantiate(online, log_model="all")._log_model == "all"
    with pytest.raises(Exception) as raised:
        hydra.utils.instantiate(offline, log_model=True)
    error = find_user_error(raised.value)  # what train.py prints, as one line
    assert isinstance(error, ConfigError) and "log_model=true needs logger.wandb.offline=false" in str(error)


def test_a_last_checkpoint_callback_does_not_take_the_best_alias():
    logger = hydra.utils.instantiate(composed("logger=wandb", "logger.wandb.offline=false").logger.wandb)
    last = SimpleNamespace(monitor=None, save_top_k=1)
    best = SimpleNamespace(monitor="val/psnr", save_top_k=1)
    for callback in (last, best, last, best):  # "last" may save before "best" does
        logger.after_save_checkpoint(callback)
    logger.finalize("success")  # no W&B run started: uploads nothing, keeps what it would upload
    assert list(logger._checkpoint_callbacks.values()) == [best]


def test_outside_a_sweep_group_and_tags_are_passed_as_given():
    cfg = composed("logger=wandb", "logger.wandb.tags=[baseline]").logger.wandb
    init = hydra.utils.instantiate(cfg)._wandb_init
    assert "group" not in init and init["tags"] == ["baseline"] and "anonymous" not in init
    assert hydra.utils.instantiate(cfg, group="mine")._wandb_init["group"] == "mine"
    assert sweep_group(SimpleNamespace(mode=RunMode.RUN)) is None


def test_a_sweep_job_is_grouped_by_its_folder_and_tagged_with_what_it_changes():
    job = SimpleNamespace(mode=RunMode.MULTIRUN, sweep=SimpleNamespace(dir="/x/outputs/multirun/2026-11-26/10-20-30"))
    assert sweep_group(job) == "2026-11-26/10-20-30"
    long_value = "data.root=/" + "d" * 80
    tags = override_tags(["norm=batch", "paths.log_dir=/tmp/x", "logger=default", "logger.wandb.offline=false",
                          "hydra.sweep.dir=s", "~callbacks.model_summary=null", "+seed=3", long_value])
    assert tags[:3] == ["norm=batch", "~callbacks.model_summary", "+seed=3"]
    assert len(tags) == 4 and len(tags[3]) == 64 and tags[3].endswith("…") and long_value.startswith(tags[3][:-1])


# ---- end to end -----------------------------------------------------------------------


def csv_metrics(run: Path) -> list[tuple[int, str, float]]:
    """(step, name, value) of every number in metrics.csv, in order."""
    with open(run / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return [(int(r["step"]), k, float(v)) for r in rows for k, v in r.items() if v and k not in ("epoch", "step")]


@pytest.mark.slow
def test_an_offline_run_holds_the_config_every_metric_and_the_sample_grids(tmp_path):
    result = run_train(*TINY, "trainer.log_every_n_steps=1", log_dir=tmp_path / "logs", logger="default",
                       env=wandb_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    [run_folder] = run_folders(tmp_path / "logs")
    run = offline_run(run_folder)

    # The resolved Hydra config, as train.py saved it to config.yaml.
    saved = OmegaConf.to_container(OmegaConf.load(run_folder / "config.yaml"))
    assert run.config["norm"]["kind"] == "instance" and run.config["model"]["norm"]["kind"] == "instance"
    assert run.config["paths"]["output_dir"] == str(run_folder)
    assert {key: run.config.get(key) for key in saved} == saved

    # Every number Lightning logged, at the same step with the same value as in metrics.csv.
    expected = csv_metrics(run_folder)
    names = {name for _, name, _ in expected}
    assert {"train/loss_d", "train/loss_g", "train/loss_g_l1", "train/loss_g_adv"} <= names
    assert {"val/psnr", "val/ssim", "val/l1"} <= names
    logged = [(row["trainer/global_step"], name, value) for row in run.history
              for name, value in row.items() if name in names]
    assert Counter(logged) == Counter(expected)
    assert all(math.isfinite(v) for _, name, v in logged if name.startswith(("train/loss", "val/")))
    psnr = [v for _, name, v in expected if name == "val/psnr"]
    assert run.values("val/psnr") == psnr and len(psnr) == 2  # the untrained model, then after the epoch

    # The sample grids: the PNG files of <run>/samples/, at the step in their names.
    grids = {int(p.stem.split("_")[1]): p for p in (run_folder / "samples").glob("step_*.png")}
    images = run.images()
    assert grids and sorted(image.step for image in images) == sorted(grids)
    for image in images:
        grid = grids[image.step]
        assert image.key == "samples" and image.caption == "input | output | target"
        assert image.file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert PILImage.open(image.file).size == PILImage.open(grid).size
        assert image.file.read_bytes() == grid.read_bytes()

    # A single run belongs to no group, and an offline run uploads no checkpoint.
    assert run.group == "" and run.tags == [] and run.artifacts == []
    assert run.project == "ganforge"
    assert "anonymous setting" not in result.stderr  # Lightning's anonymous=None made wandb warn


@pytest.mark.slow
def test_the_runs_of_a_sweep_share_a_group_carry_their_overrides_and_upload_the_best_checkpoint(tmp_path):
    # logger.wandb.offline=false is an online run; WANDB_MODE=offline (run_train sets it) keeps it
    # off the network and writes what it would upload, the checkpoint artifact included, to its file.
    result = run_train("-m", "norm=batch,instance", *TINY, "data.samples_per_epoch=4", "validate_before_training=false",
                       "~callbacks.sample_grid", "~callbacks.progress_bar", "logger.wandb.offline=false",
                       log_dir=tmp_path / "logs", logger="wandb", env=wandb_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    folders = run_folders(tmp_path / "logs")
    assert len(folders) == 2
    sweep = folders[0].parent
    runs = [offline_run(folder) for folder in folders]
    assert {run.group for run in runs} == {f"{sweep.parent.name}/{sweep.name}"}
    assert len({run.run_id for run in runs}) == 2
    for folder, run in zip(folders, runs):
        norm = run.config["norm"]["kind"]
        assert f"norm={norm}" in run.tags and "data.crop_size=32" in run.tags
        assert not [tag for tag in run.tags if tag.startswith(("paths.", "logger"))]

        # One model artifact: best.ckpt (not last.ckpt), aliased "best", with its score.
        [artifact] = run.artifacts
        best = folder / "checkpoints" / "best.ckpt"
        assert artifact.type == "model" and "best" in artifact.aliases
        assert artifact.metadata["original_filename"] == "best.ckpt"
        assert artifact.files == {"model.ckpt": best.stat().st_size}
        state = torch.load(best, map_location="cpu", weights_only=False)
        [callback] = [v for k, v in state["callbacks"].items() if "val/psnr" in k]
        assert artifact.metadata["score"] == pytest.approx(float(callback["best_model_score"]))
