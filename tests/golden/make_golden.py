"""How the golden files beside this script were made. Do not rerun it casually: see README.md.

    python tests/golden/make_golden.py --from <run>/checkpoints/last.ckpt --out /tmp/new_golden

Strips the checkpoint to what `ganforge compress` needs (weights, buffers, hyper-parameters:
no optimizer state), writes three small crops of the bundled photos as PNG, each
compressed with coder 2 (<name>.gfc) and coder 1 (<name>.coder1.gfc), and the decoded
pixels (<name>.decoded.png). The files name their checkpoint "golden.ckpt", a relative
name, so that nothing in them depends on where the repository is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data.images import sample_photo

# name -> crop of a bundled photo; one side of chelsea's is not a multiple of 16.
IMAGES = {
    "astronaut_64x64": lambda: sample_photo("astronaut")[::4, ::4][:64, :64],
    "chelsea_53x37": lambda: sample_photo("chelsea")[::3, ::3][:37, :53],
    "coffee_192x128": lambda: sample_photo("coffee")[::2, ::2][36:164, 50:242],
}
CHECKPOINT_NAME = "golden.ckpt"
KEEP = ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "hparams_name", "hyper_parameters",
        "ganforge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="the trained checkpoint (last.ckpt)")
    parser.add_argument("--out", required=True, help="an empty or new folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: golden files are not overwritten (see tests/golden/README.md)")

    from ganforge.cli.compress import load_compression_task
    from ganforge.codec.image import ImageCodec
    from ganforge.data.images import load_rgb

    checkpoint = torch.load(args.source, map_location="cpu", weights_only=True)
    torch.save({key: checkpoint[key] for key in KEEP}, out / CHECKPOINT_NAME)
    codec = ImageCodec(load_compression_task(out / CHECKPOINT_NAME), checkpoint=CHECKPOINT_NAME)
    for name, crop in IMAGES.items():
        Image.fromarray(np.ascontiguousarray(crop())).save(out / f"{name}.png")
        image = load_rgb(out / f"{name}.png")
        (out / f"{name}.gfc").write_bytes(codec.compress(image, seed=0, coder=2))
        (out / f"{name}.coder1.gfc").write_bytes(codec.compress(image, seed=0, coder=1))
        Image.fromarray(codec.decompress((out / f"{name}.gfc").read_bytes())).save(out / f"{name}.decoded.png")
        print(f"{name}: {image.shape[1]}x{image.shape[0]}, {(out / f'{name}.gfc').stat().st_size} bytes")


if __name__ == "__main__":
    main()
