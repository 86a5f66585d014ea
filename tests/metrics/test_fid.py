"""FID/KID: the Inception's layout against the reference weights file, loading, wiring, formula.

The real weights are not available here, so the wiring tests use a seeded random
Inception saved to a file: FID/KID of a set against itself must vanish and against
noise must not, whatever the weights.
"""

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import UserError
from ganforge.metrics import (
    FID_SKIPPED_MESSAGE,
    FID_WEIGHTS_FILENAME,
    GenerativeMetrics,
    InceptionFeatures,
    load_inception,
    make_fid_kid,
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
    """The loaded extractor and its features of a smooth image set and a noise set."""
    extractor = load_inception(weights_file)
    images = smooth_images(N_IMAGES, seed=1)
    noise = torch.rand(N_IMAGES, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return extractor, images, extractor(images), extractor(noise)


def test_loaded_weights_are_the_files(weights_file, features):
    extractor, images, image_features, _ = features
    state = torch.load(weights_file, weights_only=True)
    assert all(torch.equal(v, state[k]) for k, v in extractor.state_dict().items())
    assert not extractor.training and not extractor.train().training  # batch norm stays on its statistics
    assert image_features.shape == (N_IMAGES, 2048) and image_features.dtype == torch.float32
    assert image_features.std(dim=0).mean() > 1e-3  # the images are told apart
    # Any input size is resized to 299x299: a 299x299 copy of the first two images
    # (resized the same way) gives the same features.
    resized = F.interpolate(images[:2], size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(extractor(resized), image_features[:2], rtol=1e-4, atol=1e-5)


def test_fid_kid_of_a_set_against_itself_and_noise(features):
    extractor, images, image_features, noise_features = features
    same, noise = GenerativeMetrics(extractor), GenerativeMetrics(extractor)
    same.update_features(image_features, image_features)
    noise.update_features(noise_features, image_features)
    same, noise = same.compute(), noise.compute()
    assert set(same) == {"fid", "kid_mean", "kid_std"}
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


def test_update_runs_the_extractor_once_per_set(features):
    extractor, images, image_features, _ = features
    calls = []
    extractor_hook = extractor.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    try:
        metrics = GenerativeMetrics(extractor, kid_subset_size=1000)
        metrics.update(fake=images[:2], real=images[2:5])
    finally:
        extractor_hook.remove()
    assert calls == [2, 3]
    assert metrics.counts == (2, 3)
    metrics.reset()
    assert metrics.counts == (0, 0)
    with pytest.raises(UserError, match="at least 2 fake and 2 real"):
        metrics.compute()


def test_make_fid_kid_accepts_the_inception_without_probing_it():
    extractor = InceptionFeatures()
    calls = []
    extractor.register_forward_hook(lambda *args: calls.append(1))
    fid, kid = make_fid_kid(extractor, kid_subset_size=10)
    assert fid.inception is extractor and kid.inception is extractor
    assert fid.real_features_sum.shape == (2048,) and fid.normalize and kid.normalize
    assert calls == []  # torchmetrics read num_features instead of running a dummy image


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


@pytest.mark.parametrize("n_real, n_fake, side", [(40, 30, 2), (5, 7, 8), (7, 5, 8)])
def test_fid_matches_the_formula_on_synthetic_features(n_real, n_fake, side):
    """FID as configured here against numpy/scipy: ||mu1-mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)).

    Features are nn.Flatten of 3 x side x side images. 40/30 samples of 12-d features:
    full-rank covariances. 5/7 (and 7/5) samples of 192-d features: rank-deficient ones,
    the small-evaluation case (the real set's covariance is factored, or the fake's when
    that set is smaller), where scipy's sqrtm of a singular product is unreliable, so the
    reference trace is the equivalent sum of singular values of
    Xr_c Xf_c^T / sqrt((n_r - 1)(n_f - 1)).
    """
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(n_real, 3, side, side, generator=generator)
    fake = 0.7 * torch.rand(n_fake, 3, side, side, generator=generator) + 0.2
    dim = 3 * side * side
    # kid_subset_size=1000 is more than there are samples: capped at compute time.
    fid, kid = make_fid_kid(nn.Flatten(), kid_subset_size=1000, kid_subsets=10, num_features=dim)
    for batch in real.split(16):  # several batches, as an evaluation loop feeds them
        fid.update(batch, real=True)
        kid.update(batch, real=True)
    fid.update(fake, real=False)
    kid.update(fake, real=False)

    x, y = real.flatten(1).double().numpy(), fake.flatten(1).double().numpy()
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    if min(n_real, n_fake) > dim:
        trace_sqrt = np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    else:
        cross = (x - x.mean(0)) @ (y - y.mean(0)).T / np.sqrt((n_real - 1) * (n_fake - 1))
        trace_sqrt = np.linalg.svd(cross, compute_uv=False).sum()
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    # FID comes back in the features' dtype (float32): compare to float32 precision.
    assert float(fid.compute()) == pytest.approx(expected, rel=1e-5)

    kid_mean, kid_std = kid.compute()
    assert kid_mean > 0 and kid_std >= 0 and kid.subset_size == 1000
