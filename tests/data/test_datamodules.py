from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import FolderDataModule, PairedDataModule, SampleDataModule, load_rgb
from ganforge.data.datasets import AlignedPairDataset
from ganforge.errors import ConfigError, DataError
from tests.conftest import write_image


def test_sample_data_gives_crops_from_the_bundled_photos_split_by_image():
    dm = SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=20, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32)
    assert batch["image"].min() >= 0 and batch["image"].max() <= 1
    assert len(dm.train_dataloader()) == 5
    assert dm.train_set.images.names == ["astronaut", "coffee", "rocket", "motorcycle_left", "immunohistochemistry"]
    assert dm.val_set.images.names == ["chelsea"]


def test_validation_crops_are_fixed_and_training_crops_vary():
    dm = SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=8, batch_size=4)
    dm.setup()
    first = torch.stack([dm.val_set[i]["image"] for i in range(len(dm.val_set))])
    second = torch.stack([dm.val_set[i]["image"] for i in range(len(dm.val_set))])
    torch.testing.assert_close(first, second)
    # chelsea at scale 0.25 is 75x113: a 2x3 grid of 32-pixel crops.
    assert len(dm.val_set) == 6
    crops = [dm.train_set[key]["image"] for key in [(0, 0), (0, 1), (1, 0)]]
    assert not torch.equal(crops[0], crops[1])  # another sample of the same epoch
    assert not torch.equal(crops[0], crops[2])  # the same sample in the next epoch


def test_a_training_crop_is_a_function_of_seed_epoch_and_index_alone():
    def crop(seed, key):
        dm = SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=8, batch_size=4, seed=seed)
        dm.setup()
        torch.manual_seed(len(str(key)))  # the global RNG plays no part
        return dm.train_set[key]["image"]

    torch.testing.assert_close(crop(3, (2, 5)), crop(3, (2, 5)), rtol=0, atol=0)
    assert not torch.equal(crop(3, (2, 5)), crop(4, (2, 5)))


def _batches(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return [batch["input"] for batch in loader]


def test_a_resumed_loader_continues_the_epoch_where_it_stopped(tmp_path):
    for split, count in (("train", 6), ("val", 1)):
        for i in range(count):
            write_image(tmp_path / split / f"{i}.png", (64, 32), seed=i)

    def loader():
        dm = PairedDataModule(root=str(tmp_path), crop_size=16, load_size=20, batch_size=2, seed=5)
        dm.setup()
        return dm.train_dataloader()

    full = _batches(loader(), epoch=3)
    assert len(full) == 3
    assert not all(torch.equal(a, b) for a, b in zip(full, _batches(loader(), epoch=4)))  # a new order each epoch
    resumed = loader()
    resumed.load_state_dict({"epoch": 3, "batches": 2})
    rest = _batches(resumed, epoch=3)
    assert len(rest) == 1 and torch.equal(rest[0], full[2])
    # The skip applies to that epoch only: the next pass is whole.
    assert len(_batches(resumed, epoch=4)) == 3


class _Processes:
    """What a datamodule reads from a data parallel trainer."""

    def __init__(self, world_size: int, global_rank: int) -> None:
        self.world_size, self.global_rank = world_size, global_rank
        self.current_epoch = 0


def _loaders(world_size: int, **options):
    loaders = []
    for rank in range(world_size):
        dm = SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=10, batch_size=2, seed=1, **options)
        dm.trainer = _Processes(world_size, rank)
        loaders.append((dm.train_dataloader(), dm.val_dataloader()))
    return loaders


def test_data_parallel_processes_share_out_the_epochs_crops_and_the_validation_images():
    [(alone, alone_val)] = _loaders(1)
    shares = _loaders(3)
    alone.sampler.set_epoch(2)
    single = [tuple(key) for key in alone.sampler]
    keys = []
    for train, _ in shares:
        train.sampler.set_epoch(2)
        keys.append(list(train.sampler))
    # 10 crops over 3 processes: 3 each (all take the same number of steps), no crop twice,
    # and each crop is the one a single process draws for that key.
    assert [len(k) for k in keys] == [3, 3, 3] and len(set(sum(keys, []))) == 9
    assert set(sum(keys, [])) <= set(single)
    key = keys[1][0]
    torch.testing.assert_close(shares[1][0].dataset[key]["image"], alone.dataset[key]["image"], rtol=0, atol=0)
    assert [len(train) for train, _ in shares] == [1, 1, 1]  # whole batches of 2
    # Validation: every image once, over the processes.
    val_indices = sorted(i for _, val in shares for i in val.sampler)
    assert val_indices == list(range(len(alone_val.dataset)))


def test_with_fewer_validation_images_than_processes_every_process_validates_them_all():
    shares = _loaders(4, val_full_images=True)  # the one validation photo, chelsea
    for _, val in shares:
        assert len(val) == len(val.dataset) == 1  # each counts 4 times: the means are unchanged


@pytest.mark.parametrize("kwargs, error, words", [
    ({"crop_size": 400, "scale": 0.5}, DataError, "smaller than data.crop_size=400"),
    ({"val_images": ["astronaut"]}, ConfigError, "in both data.train_images and data.val_images"),
    ({"train_images": ["lena"]}, ConfigError, "data.train_images must be one of"),
    ({"batch_size": 0}, ConfigError, "data.batch_size must be an integer >= 1"),
    ({"scale": "big"}, ConfigError, "data.scale must be a number in (0, 1]"),
    ({"samples_per_epoch": 4, "batch_size": 8}, ConfigError, "larger than the 4 training samples"),
])
def test_sample_data_mistakes_are_named(kwargs, error, words):
    with pytest.raises(error) as caught:
        SampleDataModule(**kwargs).setup()
    assert words in str(caught.value)


def test_folder_data_reads_every_image_recursively_and_converts_modes(image_folder: Path):
    dm = FolderDataModule(root=str(image_folder), crop_size=32, samples_per_epoch=8, batch_size=4, val_fraction=0.2)
    dm.setup()
    names = [Path(n).name for n in dm.train_set.images.names + dm.val_set.images.names]
    assert sorted(names) == ["alpha.png", "grey.jpg", "rgb_0.png", "rgb_1.png", "rgb_2.png"]
    assert len(dm.val_set.images) == 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32)
    grey = load_rgb(image_folder / "sub" / "grey.jpg")
    assert grey.shape == (60, 80, 3) and np.array_equal(grey[..., 0], grey[..., 2])
    alpha = load_rgb(image_folder / "sub" / "alpha.png")
    assert alpha.shape == (60, 80, 3)


def test_folder_with_train_and_val_subfolders_uses_them(tmp_path: Path):
    for split, count in (("train", 3), ("val", 2)):
        for i in range(count):
            write_image(tmp_path / split / f"{i}.png", (40, 40), seed=i)
    dm = FolderDataModule(root=str(tmp_path), crop_size=32, samples_per_epoch=4, batch_size=2)
    dm.setup()
    assert len(dm.train_set.images) == 3 and len(dm.val_set.images) == 2


def test_folder_mistakes_are_named(tmp_path: Path, image_folder: Path):
    with pytest.raises(ConfigError, match="data.root is not set"):
        FolderDataModule(root=None).setup()
    with pytest.raises(DataError, match="is not a folder"):
        FolderDataModule(root=str(tmp_path / "nope")).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds 0 image"):
        FolderDataModule(root=str(tmp_path / "empty")).setup()
    (image_folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        FolderDataModule(root=str(image_folder), crop_size=32, batch_size=2).setup()


def test_a_truncated_image_is_named_when_it_is_read(tmp_path: Path):
    path = write_image(tmp_path / "photo.jpg", (64, 64))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DataError, match="cannot read image .*photo.jpg"):
        load_rgb(path)


def test_paired_data_splits_a_and_b_with_the_same_crop_and_flip(paired_folder: Path):
    dm = PairedDataModule(root=str(paired_folder), crop_size=16, load_size=24, batch_size=2)
    dm.setup()
    for _ in range(5):
        item = dm.train_set[0]
        # A is B inverted, so the same crop and flip keeps input = 1 - target.
        torch.testing.assert_close(item["input"], 1 - item["target"], atol=2 / 255, rtol=0)
        assert item["input"].shape == (3, 16, 16)
    val = dm.val_set[0]
    assert val["input"].shape == (3, 16, 16)


def test_paired_direction_swaps_input_and_target(paired_folder: Path):
    files = sorted((paired_folder / "val").glob("*.png"))
    a_to_b = AlignedPairDataset(files, 32, 32, "AtoB", train=False)[0]
    b_to_a = AlignedPairDataset(files, 32, 32, "BtoA", train=False)[0]
    torch.testing.assert_close(a_to_b["input"], b_to_a["target"])
    # The right half (B) is the target for AtoB.
    right = torch.from_numpy(load_rgb(files[0])[:, 32:]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(a_to_b["target"], right)


def test_paired_mistakes_are_named(tmp_path: Path, paired_folder: Path):
    (tmp_path / "only_train" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="val is missing"):
        PairedDataModule(root=str(tmp_path / "only_train")).setup()
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "val").mkdir(parents=True)
    with pytest.raises(DataError, match="no images in"):
        PairedDataModule(root=str(tmp_path / "empty")).setup()
    with pytest.raises(ConfigError, match="data.direction must be one of AtoB, BtoA"):
        PairedDataModule(root=str(paired_folder), direction="AB")
    with pytest.raises(ConfigError, match="load_size=100 is smaller"):
        PairedDataModule(root=str(paired_folder), crop_size=256, load_size=100)


def test_rectangular_crops(image_folder: Path):
    dm = FolderDataModule(root=str(image_folder), crop_size=[32, 48], samples_per_epoch=4, batch_size=2, val_fraction=0.2)
    dm.setup()
    assert next(iter(dm.train_dataloader()))["image"].shape == (2, 3, 32, 48)
    assert dm.val_set[0]["image"].shape == (3, 32, 48)
    with pytest.raises(ConfigError, match=r"data.crop_size must be one side or \[height, width\]"):
        FolderDataModule(root=str(image_folder), crop_size=[1, 2, 3])
    with pytest.raises(DataError, match=r"smaller than data.crop_size=\[32, 96\]"):
        FolderDataModule(root=str(image_folder), crop_size=[32, 96]).setup()


def test_full_image_validation_keeps_each_image_whole():
    dm = SampleDataModule(crop_size=32, scale=0.25, samples_per_epoch=8, batch_size=4, val_full_images=True)
    dm.setup()
    assert dm.val_set[0]["image"].shape == (3, 75, 113)  # chelsea, 300x451, at a quarter
    assert dm.val_dataloader().batch_size == 1
