"""The FID Inception: its layout against the reference weights file, loading, its outputs,
and the metrics wired to it.

The real weights are not available here, so the wiring tests use a seeded random
Inception saved to a file: FID/KID of a set against itself must vanish and against
noise must not, whatever the weights.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import UserError
from ganforge.metrics import (
    FID_SKIPPED_MESSAGE,
    FID_WEIGHTS_FILENAME,
    GENERATION_METRIC_KEYS,
    GenerationMetrics,
    InceptionFeatures,
    load_inception,
)


def weight_keys(state: dict) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_state_dict_matches_the_reference_weights_file():
    keys = weight_keys(InceptionFeatures().state_dict())
    # torch-fidelity's utils/util_convert_inception_weights.py maps the TF graph to 94
    # conv layers (conv.weight + bn weight/bias/running_mean/running_var each) and the
    # softmax layer (fc.weight, fc.bias): 94 * 5 + 2 keys, with no num_batches_tracked.
    assert len(keys) == 94 * 5 + 2
    assert len({k.rsplit(".", 2)[0] for k in keys if k.endswith(".conv.weight")}) == 94
    # pytorch-fid's fid_inception_v3 is torchvision's Inception3(num_classes=1008,
    # aux_logits=False) with forward-only patches. torchvision lists inception_v3 with
    # num_params 27,161,264 (1000 classes, with AuxLogits: conv0 768*128 + bn 256,
    # conv1 128*768*25 + bn 1536, fc 768*1000 + 1000 = 3,326,696), so the FID network has
    # 27,161,264 - 3,326,696 + 8 * (2048 + 1) = 23,850,960 parameters.
    assert sum(np.prod(shape) for k, shape in keys.items()
               if not k.endswith(("running_mean", "running_var"))) == 23_850_960
    # A few shapes from the reference layout (pytorch-fid inception.py / torchvision).
    expected = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_4a_3x3.bn.running_var": (192,),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),  # FIDInceptionA(192, pool_features=32)
        "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),  # FIDInceptionC(768, channels_7x7=128)
        "Mixed_6e.branch7x7dbl_2.conv.weight": (192, 192, 7, 1),
        "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
        "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),  # FIDInceptionE_1(1280)
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),  # FIDInceptionE_2(2048)
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }
    assert {k: keys.get(k) for k in expected} == expected
    assert not any(k.startswith("AuxLogits") for k in keys)


def random_inception_state(seed: int = 0) -> dict:
    """A seeded Inception whose activations keep their scale through the 94 layers
    (the default init shrinks them towards 1e-8), with non-trivial batch-norm statistics
    so that loading the buffers is exercised too."""
    generator = torch.Generator().manual_seed(seed)
    model = InceptionFeatures()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(0.5 + torch.rand(c, generator=generator))
                module.bias.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(c, generator=generator))
    return model.state_dict()


def smooth_images(n: int, seed: int) -> torch.Tensor:
    """(n, 3, 64, 64) in [0, 1]: random 4x4 colour fields, bilinearly upsampled."""
    coarse = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)


N_IMAGES = 8  # Inception at 299x299 costs ~0.1-0.5 s per image on a 2-core CPU


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inception") / FID_WEIGHTS_FILENAME
    torch.save(random_inception_state(), path)
    return path


@pytest.fixture(scope="module")
def features(weights_file):
    """The loaded extractor and its (features, logits) of a smooth image set and a noise set."""
    extractor = load_inception(weights_file)
    images = smooth_images(N_IMAGES, seed=1)
    noise = torch.rand(N_IMAGES, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return extractor, images, extractor(images), extractor(noise)


def test_loaded_weights_are_the_files(weights_file, features):
    extractor, images, (image_features, logits), _ = features
    state = torch.load(weights_file, weights_only=True)
    assert all(torch.equal(v, state[k]) for k, v in extractor.state_dict().items())
    assert not extractor.training and not extractor.train().training  # batch norm stays on its statistics
    assert extractor.name == "inception" and (extractor.num_features, extractor.num_classes) == (2048, 1008)
    assert image_features.shape == (N_IMAGES, 2048) and image_features.dtype == torch.float32
    assert image_features.std(dim=0).mean() > 1e-3  # the images are told apart
    # torch-fidelity's "logits_unbiased": the fc layer without its bias (the file's bias is not 0).
    assert logits.shape == (N_IMAGES, 1008) and state["fc.bias"].abs().max() > 0
    torch.testing.assert_close(logits, image_features @ state["fc.weight"].T, rtol=1e-5, atol=1e-5)
    # Any input size is resized to 299x299: a 299x299 copy of the first two images
    # (resized the same way) gives the same features.
    resized = F.interpolate(images[:2], size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(extractor(resized)[0], image_features[:2], rtol=1e-4, atol=1e-5)


def test_fid_kid_of_a_set_against_itself_and_noise(features):
    extractor, images, (image_features, image_logits), (noise_features, noise_logits) = features
    same, noise = GenerationMetrics(extractor), GenerationMetrics(extractor)
    same.update_real_features(image_features)
    same.update_fake_features(image_features, image_logits)
    noise.update_real_features(image_features)
    noise.update_fake_features(noise_features, noise_logits)
    same, noise = same.compute(), noise.compute()
    assert set(same) == set(GENERATION_METRIC_KEYS)
    trace = image_features.double().T.cov().trace().item()
    # FID's scale is the trace of the feature covariance. Against itself the exact value is
    # 0: both covariances are the same float64 matrix, so what is left is the round-off of
    # its eigen-decomposition, about D * eps = 2048 * 2.2e-16 ~ 5e-13 of the trace, and
    # the float32 cast of the result. 1e-6 of the trace is far above both and far below
    # any real difference between image sets.
    assert abs(same["fid"]) < 1e-6 * trace
    assert noise["fid"] > 0.1 * trace
    # KID's unbiased estimator is not exactly 0 for a set against itself (the cross term
    # counts the diagonal k(x, x), the within terms do not), but it is small next to noise.
    assert noise["kid_mean"] > 0
    assert abs(same["kid_mean"]) < 0.05 * noise["kid_mean"]
    # Every fake image is a real one (precision), and the other way round (recall).
    assert same["precision"] == same["recall"] == 1
    assert 1 <= same["is_mean"] <= 1008


def test_update_runs_the_extractor_once_per_set(features):
    extractor, images, image_features, _ = features
    calls = []
    extractor_hook = extractor.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    try:
        metrics = GenerationMetrics(extractor, kid_subset_size=1000)
        metrics.update(fake=images[:2], real=images[2:5])
    finally:
        extractor_hook.remove()
    assert calls == [2, 3]
    assert metrics.counts == (2, 3)
    metrics.reset()
    assert metrics.counts == (0, 0)
    with pytest.raises(UserError, match="at least 2 fake and 2 real"):
        metrics.compute()


def test_the_metrics_take_the_inception_without_running_it():
    extractor = InceptionFeatures()
    calls = []
    extractor.register_forward_hook(lambda *args: calls.append(1))
    metrics = GenerationMetrics(extractor, kid_subset_size=10)
    assert metrics.extractor is extractor and (metrics.num_features, metrics.num_classes) == (2048, 1008)
    assert calls == []  # the sizes come from the attributes, not from a dummy image


def test_no_weights_anywhere_returns_none(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert load_inception(None) is None
    assert "metrics.fid.weights=" in FID_SKIPPED_MESSAGE and FID_WEIGHTS_FILENAME in FID_SKIPPED_MESSAGE


def test_weights_in_the_torch_hub_cache_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME
    cached.parent.mkdir(parents=True)
    state = InceptionFeatures().state_dict()
    # torch-fidelity's converted file has no num_batches_tracked counters: accepted.
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, cached)
    assert isinstance(load_inception(None), InceptionFeatures)


def bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pth"
    state = InceptionFeatures().state_dict()
    if kind == "truncated":  # as an interrupted download leaves it
        torch.save({k: state[k] for k in list(state)[:20]}, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "wrong_keys":
        torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    elif kind == "wrong_shapes":
        state["fc.weight"] = torch.zeros(1000, 2048)
        state["fc.bias"] = torch.zeros(1000)
        torch.save(state, path)
    return path  # "missing": never written


@pytest.mark.parametrize("kind, says", [
    ("missing", "not found"),
    ("truncated", "cannot read"),
    ("wrong_keys", "not the FID Inception-v3 weights file"),
    ("wrong_shapes", "wrong shapes"),
])
def test_bad_weights_files_raise_one_line_user_errors(tmp_path, kind, says):
    path = bad_file(tmp_path, kind)
    with pytest.raises(UserError) as caught:
        load_inception(path)
    message = str(caught.value)
    assert says in message and str(path) in message and FID_WEIGHTS_FILENAME in message
    assert "\n" not in message
