"""`python predict.py ckpt_path=... input=photo.jpg|folder output=DIR`: run a trained
generator on photos of any size; `python predict.py ckpt_path=... predict.num_samples=500
output=DIR`: samples of a model that generates from noise.

Each input is padded to the network's multiple and the output cropped back, so the
result has the input's size. What comes out depends on the model family:

* pix2pix colorization (trained on single photos): a colour or grayscale photo in, its
  lightness kept and the colours predicted;
* pix2pix on pairs: the translation of the input photo (the A side, or B with BtoA);
* compression: the reconstruction after encoding and quantizing (see `ganforge compress`
  for real files).

Outputs are PNG files at <output>/<input's path relative to the input folder>.png,
each written atomically. An unreadable input is reported and skipped; the command fails
only when no input could be processed.

A generation model (model=dcgan, sngan) writes <output>/sample_00000.png, ...: sample i
from the latent code keyed by (predict.seed, i), so the same command writes the same
files; `predict.label=3` makes every sample of class 3 (a conditional model), else a
conditional model's samples go through the classes in turn.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from ganforge.cli import CONFIG_DIR
from ganforge.cli.errors import EXIT_USER_ERROR, report_user_errors
from ganforge.cli.precheck import check_command_line
from ganforge.errors import DataError, UserError

__all__ = ["main", "predict"]

log = logging.getLogger("ganforge")


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"predict.device={name!r} is not a device: use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"predict.device={name} but no GPU is available: use predict.device=cpu")
    return device


def _inputs(source: Path, output: Path) -> list[tuple[Path, Path]]:
    from ganforge.data.images import IMAGE_EXTENSIONS, find_images

    if source.is_dir():
        files = find_images(source)
        if not files:
            raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {source}: check input=")
        return [(f, (output / f.relative_to(source)).with_suffix(".png")) for f in files]
    if not source.is_file():
        raise DataError(f"input={source} does not exist: pass an image or a folder of images")
    return [(source, output / f"{source.stem}.png")]


def _write_png(target: Path, rgb) -> None:
    import torch
    from PIL import Image

    from ganforge.cli.files import write_atomically

    pixels = (rgb * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    write_atomically(target, lambda temporary: Image.fromarray(pixels).save(temporary, format="PNG"))


def _output_folder(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"output={output} is a file: pass a folder for the results")


def _make_folder(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot write to output={output} ({error.strerror or error}): choose another folder") from None


def _load(cfg: DictConfig):
    from ganforge.checkpoint import load_task

    options = cfg.predict
    device = _device(str(options.device))
    task = load_task(cfg.ckpt_path)
    if not options.use_ema:
        task.generator_ema = None
    return task.to(device)


def generate_samples(cfg: DictConfig) -> tuple[int, list[str]]:
    """Write predict.num_samples samples of a generation checkpoint; returns (written, [])."""
    from ganforge.checks import check_int
    from ganforge.cli.files import progress

    options, output = cfg.predict, Path(str(cfg.output))
    if cfg.get("input") is not None:
        raise UserError(f"input={cfg.input}: this model generates images from noise and takes no input; "
                        "drop input= and pass predict.num_samples=N")
    if options.get("num_samples") is None:
        raise UserError("predict.num_samples is missing: python predict.py ckpt_path=... predict.num_samples=500 "
                        "output=DIR")
    count = check_int("predict.num_samples", options.num_samples, 1)
    label = options.get("label")
    seed = check_int("predict.seed", options.get("seed", cfg.seed), 0)
    _output_folder(output)
    task = _load(cfg)
    task.inference_generator.eval()
    task.sample(1, seed=seed, label=label)  # a bad label is refused before anything is written
    _make_folder(output)
    written, batch = 0, 64
    starts = list(range(0, count, batch))
    for start in progress(starts, "sampling"):
        images = task.sample(min(batch, count - start), seed=seed, label=label, first=start)
        for offset, image in enumerate(images):
            target = output / f"sample_{start + offset:05d}.png"
            if target.exists() and not options.overwrite:
                continue
            _write_png(target, image if task.image_channels == 3 else image[:1])
            written += 1
    return written, []


def predict(cfg: DictConfig) -> tuple[int, list[str]]:
    """Run the checkpoint's generator over `cfg.input` (or sample a generation model);
    returns (images written, problems)."""
    import torch

    from ganforge.checkpoint import checkpoint_family, read_checkpoint
    from ganforge.data.datasets import to_tensor
    from ganforge.data.images import load_rgb
    from ganforge.cli.files import progress

    if checkpoint_family(read_checkpoint(cfg.ckpt_path)) == "generation":
        return generate_samples(cfg)
    options = cfg.predict
    output = Path(str(cfg.output))
    if cfg.get("input") is None:
        raise UserError("input is missing: python predict.py ckpt_path=<run>/checkpoints/best.ckpt "
                        "input=<image or folder> output=<folder>")
    if options.get("num_samples") is not None or options.get("label") is not None:
        raise UserError("predict.num_samples and predict.label are for models that generate from noise; this "
                        "model translates photos: pass input=<image or folder>")
    _output_folder(output)
    pairs = _inputs(Path(str(cfg.input)), output)
    _make_folder(output)
    task = _load(cfg)
    device = next(task.parameters()).device
    generator = task.inference_generator
    # Eval mode: running batch-norm statistics, no dropout. pix2pix's own test script keeps
    # the generator in train mode (dropout as noise, each image's own statistics).
    generator.train(bool(options.train_mode))
    torch.manual_seed(int(cfg.seed))

    written, problems = 0, []
    for source, target in progress(pairs, "predicting"):
        if target.exists() and not options.overwrite:
            continue
        try:
            image = load_rgb(source)
        except DataError as error:
            problems.append(str(error))
            print(f"skipped: {error}", file=sys.stderr)
            continue
        rgb = to_tensor(image).unsqueeze(0).to(device)
        _write_png(target, task.translate(rgb, generator)[0])
        written += 1
    return written, problems


def _check_arguments(cfg: DictConfig, overrides: list[str] | None = None) -> None:
    for key in ("ckpt_path", "output"):
        if OmegaConf.is_missing(cfg, key):
            raise UserError(
                f"{key} is missing: python predict.py ckpt_path=<run>/checkpoints/best.ckpt input=<image or folder> "
                "output=<folder> (or predict.num_samples=N instead of input for a model that generates from noise)"
            )


@hydra.main(config_path=str(CONFIG_DIR), config_name="predict", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    with report_user_errors():
        _check_arguments(cfg)
        written, problems = predict(cfg)
    mode = "train mode" if cfg.predict.train_mode else "eval mode"
    print(f"{written} image(s) written to {cfg.output} ({mode})"
          + (f"; {len(problems)} skipped (unreadable, listed above)" if problems else ""))
    if problems and not written:
        sys.exit(EXIT_USER_ERROR)


def main() -> None:
    check_command_line("predict", sys.argv[1:], _check_arguments)
    _hydra_main()


if __name__ == "__main__":
    main()
