"""GenerationMetrics: what a user of the container notices, its wiring to the arithmetic,
the kept reference set, and data parallel runs (two gloo processes)."""

import math

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from ganforge.errors import ConfigError, UserError
from ganforge.metrics import GENERATION_METRIC_KEYS, GenerationMetrics
from ganforge.metrics import generation as generation_module
from ganforge.metrics.scores import (
    Gaussian,
    frechet_distance,
    inception_score,
    kernel_distance,
    precision_recall,
)

D, K = 6, 4


class Split(nn.Module):
    """An extractor for tests: 'images' (N, D + K) are already (features | logits)."""

    name = "split"
    num_features, num_classes = D, K

    def forward(self, rows):
        return rows[:, :D], rows[:, D:]


def rows(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, D + K, generator=torch.Generator().manual_seed(seed)) + shift


def computed(fake: torch.Tensor, real: torch.Tensor, batch: int = 16, **options) -> dict:
    metrics = GenerationMetrics(Split(), **options)
    for part in fake.split(batch):
        metrics.update_fake(part)
    for part in real.split(batch):
        metrics.update_real(part)
    return metrics.compute()


def test_identical_sets_and_far_apart_sets():
    real = rows(80, seed=0)
    same = computed(real, real)
    assert set(same) == set(GENERATION_METRIC_KEYS)
    assert same["precision"] == same["recall"] == 1
    assert abs(same["fid"]) < 1e-9
    far = computed(rows(80, seed=1, shift=100.0), real)
    assert far["precision"] == far["recall"] == 0
    assert far["fid"] > 100**2 * D * 0.9 and far["kid_mean"] > 0


def test_the_numbers_are_the_arithmetic_on_every_batch():
    fake, real = rows(50, seed=2, shift=0.5), rows(70, seed=3)
    options = dict(kid_subset_size=20, kid_subsets=7, is_splits=5, neighbours=3, seed=4)
    got = computed(fake, real, **options)
    f, r, logits = fake[:, :D], real[:, :D], fake[:, D:]
    kid = kernel_distance(r, f, subsets=7, subset_size=20, seed=4)
    score = inception_score(logits, splits=5, seed=4)
    precision, recall = precision_recall(r, f, k=3)
    expected = {"fid": frechet_distance(Gaussian.of(r), Gaussian.of(f)), "kid_mean": kid[0], "kid_std": kid[1],
                "is_mean": score[0], "is_std": score[1], "precision": precision, "recall": recall}
    assert got == pytest.approx({key: float(value) for key, value in expected.items()}, rel=1e-9)
    assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1
    # Reproducible, and the global RNG is left alone.
    state = torch.random.get_rng_state()
    assert computed(fake, real, **options) == got
    assert torch.equal(torch.random.get_rng_state(), state)


def test_the_reference_set_is_kept_and_summarised_once(monkeypatch):
    real, second_fake = rows(60, seed=5), rows(40, seed=7, shift=1.0)
    expected = computed(second_fake, real, kid_subset_size=30, kid_subsets=5)  # from scratch
    calls = []
    real_radii = generation_module.squared_knn_radii
    monkeypatch.setattr(generation_module, "squared_knn_radii", lambda *a, **kw: calls.append(1) or real_radii(*a, **kw))
    metrics = GenerationMetrics(Split(), kid_subset_size=30, kid_subsets=5)
    metrics.update_real(real)
    metrics.update_fake(rows(40, seed=6, shift=0.3))
    first = metrics.compute()
    metrics.reset_fake()
    assert metrics.counts == (0, 60)
    metrics.update_fake(second_fake)
    second = metrics.compute()
    assert calls == [1]  # the real radii were computed for the first evaluation only
    assert second == expected
    assert second["fid"] > first["fid"]
    metrics.update_real(rows(5, seed=8))  # the reference set changed: summarised again
    metrics.compute()
    assert calls == [1, 1]
    metrics.reset()
    assert metrics.counts == (0, 0)


def test_small_sets_get_fid_but_not_precision_recall():
    got = computed(rows(3, seed=9), rows(3, seed=10))
    assert math.isfinite(got["fid"]) and got["kid_std"] == 0
    assert math.isnan(got["precision"]) and math.isnan(got["recall"])
    with pytest.raises(UserError, match="at least 2 fake and 2 real images, got 1 fake and 3 real"):
        computed(rows(1, seed=9), rows(3, seed=10))


def test_features_are_float32_under_autocast():
    torch.manual_seed(0)
    extractor = nn.Linear(8, D + K)
    extractor.name, extractor.num_features, extractor.num_classes = "linear", D, K
    wrapped = nn.Sequential(extractor, Split())
    wrapped.num_features, wrapped.num_classes = D, K
    metrics = GenerationMetrics(wrapped)
    images = torch.randn(5, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features, logits = metrics.extract(images)
    assert features.dtype == torch.float32
    torch.testing.assert_close(features, extractor(images)[:, :D].detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("option, value", [("kid_subset_size", 1), ("is_splits", 0), ("neighbours", 2.5)])
def test_bad_options_are_config_errors(option, value):
    with pytest.raises(ConfigError, match=option):
        GenerationMetrics(Split(), **{option: value})
    with pytest.raises(ValueError, match="num_features"):
        GenerationMetrics(nn.Identity())


# Data parallel: rank 0 holds the first part of each set, rank 1 the rest; rank 1 has no
# fake images at all (a process that drew none still has to join the gathers).
REAL, FAKE = rows(45, seed=11), rows(36, seed=12, shift=0.4)
SHARDS = {0: (REAL[:25], FAKE), 1: (REAL[25:], FAKE[:0])}
OPTIONS = dict(kid_subset_size=20, kid_subsets=6, is_splits=4)


def _data_parallel_worker(rank: int, init_file: str, results) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        metrics = GenerationMetrics(Split(), **OPTIONS)
        real, fake = SHARDS[rank]
        metrics.update_real(real)
        if len(fake):
            metrics.update_fake(fake)
        first = metrics.compute()
        assert metrics.counts == (len(fake), len(real))  # the gathered sets were not kept
        metrics.reset_fake()
        if len(fake):
            metrics.update_fake(fake[:30])
        results[rank] = (first, metrics.compute())
    finally:
        torch.distributed.destroy_process_group()


def test_data_parallel_processes_get_the_single_process_numbers(tmp_path):
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_data_parallel_worker, args=(str(tmp_path / "init"), results), nprocs=2)
        results = dict(results)
    # The gathered sets are rank 0's rows then rank 1's: here REAL and FAKE in order.
    expected = (computed(FAKE, REAL, **OPTIONS), computed(FAKE[:30], REAL, **OPTIONS))
    for rank in (0, 1):
        for got, want in zip(results[rank], expected):
            assert got == pytest.approx(want, rel=1e-12)
