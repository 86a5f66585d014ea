"""The FID Inception-v3's weights, read from disk: nothing is shipped or downloaded.

`load_inception` reads pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (or
torch-fidelity's copy of the same TensorFlow graph) from a path or the torch hub cache,
with ``weights_only=True``, and checks its keys and shapes against `InceptionFeatures`;
a missing, damaged or wrong file is a one-line UserError naming it. With no path and no
cached file it returns None, and callers log `FID_SKIPPED_MESSAGE`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from ganforge.errors import UserError, user_message
from ganforge.metrics.inception import InceptionFeatures

__all__ = [
    "FID_SKIPPED_MESSAGE",
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_URL",
    "default_weights_paths",
    "load_inception",
]

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_FILENAME}"
# torch-fidelity (and so torchmetrics' built-in FID) caches the same TF graph's weights
# under this name, with the same keys; a user who ran either already has it.
_TORCH_FIDELITY_FILENAME = "weights-inception-2015-12-05-6726825d.pth"

FID_SKIPPED_MESSAGE = (
    f"FID/KID skipped: no Inception weights (pass metrics.fid.weights=/path/to/{FID_WEIGHTS_FILENAME})"
)

_FIX = f"pass the path of {FID_WEIGHTS_FILENAME} (download: {FID_WEIGHTS_URL})"


def default_weights_paths() -> list[Path]:
    """Where `load_inception(None)` looks, in order: the torch hub checkpoint cache.

    That is ``$TORCH_HOME/hub/checkpoints/`` (TORCH_HOME defaults to
    ``$XDG_CACHE_HOME/torch``, i.e. ``~/.cache/torch``), where pytorch-fid and
    torch-fidelity download their copies.
    """
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    return [checkpoints / FID_WEIGHTS_FILENAME, checkpoints / _TORCH_FIDELITY_FILENAME]


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """The file's tensors, read with weights_only=True; a UserError naming the file otherwise."""
    if path.is_dir():
        raise UserError(f"Inception weights path {path} is a folder: {_FIX}")
    if not path.is_file():
        raise UserError(f"Inception weights not found: {path}: {_FIX}")
    try:
        # weights_only: the file may come from anywhere, and must not be able to run code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, a pickle with code in it, not a torch file at all
        raise UserError(
            f"cannot read Inception weights {path} ({user_message(error)}): the file is damaged; {_FIX}"
        ) from None
    # A state dict saved inside a checkpoint-like wrapper is accepted too.
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path} is not a state dict of tensors: {_FIX}")
    return state


def _check_keys(path: Path, state: dict[str, Tensor], model: nn.Module) -> None:
    """UserError naming the file unless its keys and shapes are the FID Inception's.

    BatchNorm's ``num_batches_tracked`` counters are ignored: torch-fidelity's converted
    file has none, and they play no part in eval mode.
    """
    def weights(d):
        return {k: tuple(v.shape) for k, v in d.items() if not k.endswith("num_batches_tracked")}

    expected, found = weights(model.state_dict()), weights(state)
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found.keys() - expected.keys())
    if missing or unexpected:
        detail = ", ".join(part for part in (
            f"{len(missing)} missing keys such as {missing[0]}" if missing else "",
            f"{len(unexpected)} unexpected keys such as {unexpected[0]}" if unexpected else "",
        ) if part)
        raise UserError(f"{path} is not the FID Inception-v3 weights file ({detail}): {_FIX}")
    wrong = [k for k in expected if found[k] != expected[k]]
    if wrong:
        k = wrong[0]
        raise UserError(
            f"{path} has the FID Inception-v3 keys but {len(wrong)} wrong shapes "
            f"(such as {k}: {list(found[k])}, expected {list(expected[k])}): {_FIX}"
        )


def load_inception(weights: str | Path | None = None) -> InceptionFeatures | None:
    """The FID Inception-v3 with the standard weights, in eval mode on the CPU; or None.

    weights: the path of ``pt_inception-2015-12-05-6726825d.pth`` (a plain state dict, as
    pytorch-fid publishes it; torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``
    has the same keys and works too). None: use the first of `default_weights_paths()`
    that exists, and return None when there is none (nothing is downloaded).

    Raises a one-line UserError naming the file when it is missing, unreadable, or not
    the FID Inception's weights (wrong keys or shapes).
    """
    if weights is None:
        path = next((p for p in default_weights_paths() if p.is_file()), None)
        if path is None:
            return None
    else:
        path = Path(weights).expanduser()
    state = _read_state_dict(path)
    model = InceptionFeatures()
    _check_keys(path, state, model)
    # strict=False only for the num_batches_tracked counters _check_keys allowed to be absent.
    model.load_state_dict(state, strict=False)
    return model.eval()
